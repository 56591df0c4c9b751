"""The benchmark runs and counts every event; its speed is printed, never asserted."""

from __future__ import annotations

import pytest

from hub.bench import format_report, run_bench
from hub.settings import HubSettings

pytestmark = pytest.mark.asyncio


async def test_bench_measures_every_event_of_both_pipes(hub_settings: HubSettings) -> None:
    report = await run_bench(hub_settings, events=150, payload_bytes=400)
    for result in (report.raw, report.hop):
        assert result.events == 150
        assert len(result.latencies_ms) == 150
        assert min(result.latencies_ms) > 0
        assert result.percentile(99) >= result.percentile(50)
    assert "ratio hub hop / raw pipe" in format_report(report, broker="test")
