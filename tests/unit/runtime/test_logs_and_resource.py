"""What an operator's collectors get: JSON log lines tied to traces, and the service's name
as OpenTelemetry's own variables set it."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from hub.runtime.logs import JsonLines, configure_logging
from hub.runtime.telemetry import service_resource


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("hub.test", logging.WARNING, __file__, 1, message, args, None)


def test_a_json_line_inside_a_span_carries_its_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("process hub.ingress") as span:
        line = json.loads(JsonLines("registry").format(_record("case %s opened", "eumzug-1")))
        context = span.get_span_context()
    assert line["message"] == "case eumzug-1 opened"
    assert line["service"] == "registry"
    assert line["level"] == "WARNING"
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_a_json_line_outside_any_span_has_no_trace_id_and_keeps_the_exception() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord(
            "hub.test", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    line = json.loads(JsonLines("identity").format(record))
    assert "trace_id" not in line
    assert "ValueError: broken" in line["exception"]


def test_the_json_setting_puts_json_lines_on_the_root_logger(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", service="notifications", json_lines=True)
    try:
        logging.getLogger("hub.test").info("sent")
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert (line["service"], line["message"]) == ("notifications", "sent")


def test_otel_service_name_is_honoured_and_the_hubs_name_is_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert service_resource("registry", {}).attributes["service.name"] == "registry"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "hub-registry-prod")
    named = service_resource("registry", {"OTEL_SERVICE_NAME": "hub-registry-prod"})
    assert named.attributes["service.name"] == "hub-registry-prod"
