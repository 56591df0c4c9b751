"""The benchmark runs and counts every event of both pipes; its speed is printed, never asserted."""

from __future__ import annotations

import pytest

from hub.local.bench import format_report, run_bench
from hub.runtime.settings import HubSettings

pytestmark = pytest.mark.asyncio

EVENTS = 200


async def test_bench_measures_every_event_of_both_pipes(hub_settings: HubSettings) -> None:
    report = await run_bench(hub_settings, events=EVENTS, payload_bytes=400)

    for result in (report.raw, report.hop):
        # ``events`` counts distinct events read back, one latency each.
        assert result.events == EVENTS, result.name
        assert len(result.latencies_ms) == EVENTS, result.name
        assert min(result.latencies_ms) > 0, result.name
        assert result.percentile(99) >= result.percentile(50), result.name
        assert result.seconds > 0, result.name
    assert report.raw.value_bytes == 400
    text = format_report(report, broker="test", database="test")
    assert "(a) raw aiokafka pipe" in text
    assert "ratio (b)/(a) of events/s" in text
