"""What an operator's Prometheus and log collector get from the running services after one
case: every metric the alert rules and the dashboard use, with the case counted, and JSON
log lines that name the case's trace."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.cli.casefile import CaseView
from hub.local.demo import run_demo
from tests.e2e.support import Hub, supervised_hub
from tests.fixtures.infrastructure import Infrastructure

CONTRACT = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    settings = {"HUB_LOG_FORMAT": "json", "HUB_LOG_LEVEL": "DEBUG"}
    with supervised_hub(infrastructure, tmp_path_factory, settings) as hub:
        yield hub


@pytest.fixture(scope="module")
def case(hub: Hub) -> CaseView:
    view = asyncio.run(run_demo(hub.settings, progress=lambda _line: None, timeout_s=90))
    assert view.status == "completed"
    return view


def _scrape(hub: Hub, service: str) -> str:
    port = hub.supervisor.processes[service].health_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def _samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_the_services_serve_every_metric_the_deployment_relies_on(hub: Hub, case: CaseView) -> None:
    served: set[tuple[str, str]] = set()
    for service in ("identity", "registry", "notifications"):
        served |= {(f.name, f.type) for f in text_string_to_metric_families(_scrape(hub, service))}
    # The parser names a counter's family without its _total.
    wanted = {
        (m["name"].removesuffix("_total") if m["type"] == "counter" else m["name"], m["type"])
        for m in CONTRACT["metrics"]
        if m["source"] in ("hub", "process")
    }
    assert sorted(wanted - served) == []


def test_the_case_is_counted_where_it_happened(hub: Hub, case: CaseView) -> None:
    registry = _samples(_scrape(hub, "registry"))
    latency = registry["hub_case_latency_seconds_count"]
    assert latency[(("case_type", "relocation"),)] == 1.0
    processed = registry["hub_record_processing_seconds_count"]
    assert sum(processed.values()) >= 4  # the report and three answers, at least
    notifications = _samples(_scrape(hub, "notifications"))["hub_notifications_total"]
    delivered = notifications[(("channel", "email"), ("status", "delivered"))]
    assert delivered >= 3  # received, each milestone, completed: the notices of this one case


def test_json_log_lines_carry_the_trace_of_the_case(hub: Hub, case: CaseView) -> None:
    lines = []
    for service in ("identity", "registry", "notifications"):
        log = hub.supervisor.state_dir / "logs" / f"{service}.log"
        lines += [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines"
    assert all({"time", "level", "logger", "service", "message"} <= set(line) for line in lines)
    of_the_case = [line for line in lines if line.get("trace_id") == case.trace_id]
    assert of_the_case, f"no log line names trace {case.trace_id}"
    assert all(len(line["span_id"]) == 16 for line in of_the_case)
