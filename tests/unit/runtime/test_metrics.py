"""/metrics by convention: prometheus_client's text format, histograms, process figures, and
every name the alert rules and the dashboard use (``deploy/metrics.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from hub.runtime.metrics import ServiceMetrics

CONTRACT = json.loads((Path(__file__).resolve().parents[3] / "deploy" / "metrics.json").read_text())
# Observed by a service's own code (its composition root registers them), not by the runtime.
SERVICE_OWNED = {"hub_case_latency_seconds", "hub_cases_escalated_total", "hub_notifications_total"}


def _served(metrics: ServiceMetrics) -> dict[str, str]:
    families = text_string_to_metric_families(metrics.render())
    return {family.name: family.type for family in families}


def _exposed(name: str, kind: str) -> str:
    # The parser names a counter's family without its _total suffix.
    return name.removesuffix("_total") if kind == "counter" else name


def test_the_runtime_serves_every_metric_the_deployment_relies_on() -> None:
    metrics = ServiceMetrics("registry")
    metrics.record_finished("hub.ingress", "hub.registry.ingress", "processed", 0.02)
    metrics.dead_lettered("hub.ingress.ch.mun.1059.einwohnerdienste", "NotAParty")
    metrics.set_lag({("hub.registry.ingress", "hub.ingress.ch.mun.1059.einwohnerdienste", 0): 3})
    metrics.set_outbox(backlog=2, oldest_s=1.5, parked=0, oldest_parked_s=0.0)
    served = _served(metrics)
    expected = {
        _exposed(m["name"], m["type"]): m["type"]
        for m in CONTRACT["metrics"]
        if m["source"] in ("hub", "process") and m["name"] not in SERVICE_OWNED
    }
    assert {name: served.get(name) for name in expected} == expected


def test_record_processing_is_a_histogram_per_route() -> None:
    metrics = ServiceMetrics("identity")
    for seconds in (0.004, 0.03, 0.2, 7.0):
        metrics.record_finished("hub.identity.requests", "hub.identity.requests", "processed", seconds)
    text = metrics.render()
    labels = 'route="hub.identity.requests",service="identity"'
    assert f'hub_record_processing_seconds_bucket{{le="0.005",{labels}}} 1.0' in text
    assert f'hub_record_processing_seconds_bucket{{le="0.25",{labels}}} 3.0' in text
    assert f'hub_record_processing_seconds_bucket{{le="+Inf",{labels}}} 4.0' in text
    assert f"hub_record_processing_seconds_count{{{labels}}} 4.0" in text


def test_consumer_lag_shows_the_partitions_held_now_only() -> None:
    metrics = ServiceMetrics("notifications")
    metrics.set_lag({("g", "t", 0): 5, ("g", "t", 1): 0})
    metrics.set_lag({("g", "t", 1): 2})  # partition 0 went to another replica
    text = metrics.render()
    assert 'hub_consumer_lag{group="g",partition="1",service="notifications",topic="t"} 2.0' in text
    assert 'partition="0"' not in text


def test_a_services_own_figures_follow_the_runtimes() -> None:
    metrics = ServiceMetrics("registry")
    escalated = metrics.counter("hub_cases_escalated", "Cases escalated.", ["case_type"])
    escalated.labels("relocation").inc()
    text = metrics.render(['hub_case_unfilled_slots{service="registry"} 1'])
    assert 'hub_cases_escalated_total{case_type="relocation"} 1.0' in text
    assert text.endswith('hub_case_unfilled_slots{service="registry"} 1\n')
