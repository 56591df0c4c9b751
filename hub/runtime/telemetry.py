"""OpenTelemetry set-up and the messaging spans of the hub.

The hub instruments Kafka itself (not FastStream's middleware, not the aiokafka
instrumentor) so that spans follow the current messaging conventions, name the
consumer group and carry the CloudEvents id and the case id. Database calls are
traced by the asyncpg instrumentor when ``HUB_TRACE_DATABASE`` asks for it.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hub.runtime.settings import HubSettings

Headers = Sequence[tuple[str, bytes]]
_PROPAGATOR = TraceContextTextMapPropagator()
TRACER_NAME = "ch.lu.hub"


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans as JSON lines: a trace store that needs no collector.

    Several processes may append to the same file; each line is written with one
    ``write`` on a file opened in append mode, which keeps lines whole.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_to_dict(span), default=str) + "\n" for span in spans)
        with self._lock:
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._file.close()


def span_to_dict(span: ReadableSpan) -> dict[str, object]:
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "service": (span.resource.attributes.get("service.name") if span.resource else None),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
        # A batch's receive span has no parent but links to the spans its records came from.
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
            }
            for link in span.links
        ],
    }


def service_resource(service_name: str, environ: Mapping[str, str]) -> Resource:
    """The service's resource: ``OTEL_SERVICE_NAME`` (and ``OTEL_RESOURCE_ATTRIBUTES``) as the
    OpenTelemetry convention has it, the hub's name for the service where none is set."""
    if environ.get("OTEL_SERVICE_NAME"):
        return Resource.create({})
    return Resource.create({"service.name": service_name})


def setup_tracing(service_name: str, settings: HubSettings) -> TracerProvider:
    """Install the process-wide tracer provider; exporters follow the settings.

    Database statements are traced only with ``HUB_TRACE_DATABASE``: a span per statement
    costs more than many statements themselves, and a record's handler runs several.
    """
    provider = TracerProvider(resource=service_resource(service_name, os.environ))
    exporter = choose_exporter(settings, os.environ)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    if settings.trace_database:
        _instrument_asyncpg()
    return provider


def choose_exporter(settings: HubSettings, environ: Mapping[str, str]) -> SpanExporter | None:
    """OTLP whenever an endpoint is configured (the standard variable); else the setting."""
    if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if settings.traces_exporter == "console":
        return ConsoleSpanExporter()
    if settings.traces_exporter == "jsonl":
        return JsonLinesSpanExporter(settings.traces_file or settings.state_dir / "traces.jsonl")
    return None


def _instrument_asyncpg() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def tracer() -> trace.Tracer:
    """The hub's tracer of the current provider; asked for once per span, so kept per
    provider (the SDK builds a new tracer on every ``get_tracer``)."""
    return _tracer_of(trace.get_tracer_provider())


@functools.lru_cache(maxsize=4)
def _tracer_of(provider: trace.TracerProvider) -> trace.Tracer:
    return provider.get_tracer(TRACER_NAME)


class _HeaderGetter(Getter[Mapping[str, str]]):
    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


class _DictSetter(Setter[dict[str, str]]):
    def set(self, carrier: dict[str, str], key: str, value: str) -> None:
        carrier[key] = value


def extract_context(headers: Headers) -> otel_context.Context:
    carrier = {
        name: value.decode("latin-1") for name, value in headers if name in ("traceparent", "tracestate")
    }
    return _PROPAGATOR.extract(carrier, getter=_HeaderGetter())


def context_from_traceparent(traceparent: str | None, tracestate: str | None) -> otel_context.Context:
    carrier = {"traceparent": traceparent or "", "tracestate": tracestate or ""}
    return _PROPAGATOR.extract({k: v for k, v in carrier.items() if v}, getter=_HeaderGetter())


def current_trace_headers() -> dict[str, str]:
    """traceparent/tracestate of the current span, for Kafka headers or an outbox row."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, setter=_DictSetter())
    return carrier


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def messaging_attributes(
    *,
    topic: str,
    operation: str,
    event_id: str,
    event_type: str,
    event_source: str,
    case_id: str,
    key: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    consumer_group: str | None = None,
) -> dict[str, str | int]:
    """Attributes per the OpenTelemetry messaging and CloudEvents conventions."""
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
        "messaging.message.id": event_id,
        "cloudevents.event_id": event_id,
        "cloudevents.event_type": event_type,
        "cloudevents.event_source": event_source,
        "hub.case_id": case_id,
    }
    if key is not None:
        attributes["messaging.kafka.message.key"] = key
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    if consumer_group is not None:
        attributes["messaging.consumer.group.name"] = consumer_group
    return attributes


@contextmanager
def consumer_span(headers: Headers, attributes: dict[str, str | int], topic: str) -> Iterator[Span]:
    """``process <topic>``: a child of the producer's span (single-message delivery)."""
    parent = extract_context(headers)
    with tracer().start_as_current_span(
        f"process {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


@contextmanager
def batch_span(consumer_group: str, topic: str, headers: Sequence[Headers]) -> Iterator[Span]:
    """``receive <topic>``: one span per batch, linked to each record's producer span.

    The messaging conventions for batch receiving: a batch has no single parent, so it
    starts a trace of its own and links the records' contexts; each record is processed
    under its own ``process`` span, a child of its producer's, so a case keeps one trace.
    """
    links = []
    for record_headers in headers:
        context = trace.get_current_span(extract_context(record_headers)).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "receive",
        "messaging.operation.name": "receive",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": consumer_group,
        "messaging.batch.message_count": len(headers),
    }
    with tracer().start_as_current_span(
        f"receive {topic}",
        context=otel_context.Context(),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
    ) as span:
        yield span
