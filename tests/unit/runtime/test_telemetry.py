"""Exporter choice and trace-context plumbing, without a collector."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from hub.runtime import telemetry
from hub.runtime.settings import HubSettings
from hub.runtime.telemetry import (
    JsonLinesSpanExporter,
    choose_exporter,
    context_from_traceparent,
    extract_context,
    messaging_attributes,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_otlp_is_used_whenever_an_endpoint_is_configured(tmp_path: Path) -> None:
    settings = HubSettings(traces_exporter="console", state_dir=tmp_path)
    exporter = choose_exporter(settings, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert isinstance(exporter, OTLPSpanExporter)
    exporter.shutdown()


def test_without_an_endpoint_the_setting_decides(tmp_path: Path) -> None:
    assert choose_exporter(HubSettings(traces_exporter="none"), {}) is None
    assert isinstance(choose_exporter(HubSettings(traces_exporter="console"), {}), ConsoleSpanExporter)
    jsonl = choose_exporter(HubSettings(traces_exporter="jsonl", state_dir=tmp_path), {})
    assert isinstance(jsonl, JsonLinesSpanExporter)
    jsonl.shutdown()
    assert (tmp_path / "traces.jsonl").exists()


def test_trace_context_is_read_from_kafka_headers_and_outbox_columns() -> None:
    from_headers = extract_context([("traceparent", TRACEPARENT.encode()), ("ce_id", b"x")])
    from_row = context_from_traceparent(TRACEPARENT, None)
    for ctx in (from_headers, from_row):
        span_context = trace.get_current_span(ctx).get_span_context()
        assert format(span_context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
        assert span_context.is_remote


def test_missing_trace_context_starts_a_new_trace() -> None:
    assert not trace.get_current_span(context_from_traceparent(None, None)).get_span_context().is_valid


def test_messaging_attributes_follow_the_semantic_conventions() -> None:
    attributes = messaging_attributes(
        topic="hub.ingress",
        operation="process",
        key="case-1",
        partition=2,
        offset=7,
        consumer_group="hub.registry.ingress",
        event_id="e-1",
        event_type="t.v1",
        event_source="urn:x",
        case_id="case-1",
    )
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.destination.name"] == "hub.ingress"
    assert attributes["messaging.destination.partition.id"] == "2"
    assert attributes["messaging.kafka.offset"] == 7
    assert attributes["messaging.consumer.group.name"] == "hub.registry.ingress"
    assert attributes["messaging.message.id"] == attributes["cloudevents.event_id"] == "e-1"
    assert attributes["hub.case_id"] == "case-1"


def test_sql_statements_are_spans_only_when_the_setting_asks_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    instrumented: list[bool] = []
    monkeypatch.setattr(telemetry, "_instrument_asyncpg", lambda: instrumented.append(True))
    monkeypatch.setattr(trace, "set_tracer_provider", lambda _provider: None)  # the process's stays

    telemetry.setup_tracing("registry", HubSettings(state_dir=tmp_path))
    assert instrumented == []
    telemetry.setup_tracing("registry", HubSettings(state_dir=tmp_path, trace_database=True))
    assert instrumented == [True]
