"""``hub bench``: what one hub hop costs compared with a raw Kafka pipe, on the same broker.

(a) raw: aiokafka produce -> consume -> ``json.loads``; the floor for any Kafka consumer.
(b) hub hop: a partner-style CloudEvent is consumed by a real ``ServiceRuntime`` (the
    FastStream subscriber, envelope and contract validation, inbox claim, an effect row
    and an outbox row in one transaction, offset commit), and the outbox relay publishes
    the resulting event, which a plain consumer reads. Tracing is on: spans are created
    and batched by the SDK, and exported to a sink that drops them, so export I/O is not
    what is measured.

Throughput is events / (first publish .. last event read); latency is per event, read
time minus publish time. A benchmark prints figures; it asserts nothing about speed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pydantic import SecretStr

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.consumer import Route
from hub.errors import HubError
from hub.kafka import ensure_topics
from hub.logs import configure_logging
from hub.messages import Incoming, Transaction
from hub.service import ServiceContext, ServiceDefinition, ServiceRuntime
from hub.settings import HubSettings
from hub.telemetry import current_trace_headers, setup_tracing, tracer


class BenchError(HubError):
    pass


@dataclass(frozen=True)
class PipeResult:
    name: str
    events: int
    seconds: float
    latencies_ms: tuple[float, ...]

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass(frozen=True)
class BenchReport:
    raw: PipeResult
    hop: PipeResult

    @property
    def ratio(self) -> float:
        return self.hop.per_second / self.raw.per_second


class _DroppingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _payload(n: int, payload_bytes: int) -> dict[str, Any]:
    base = {"n": n, "case": f"bench-{n}", "sent": 0.0, "pad": ""}
    base["pad"] = "x" * max(0, payload_bytes - len(json.dumps(base)) - 20)
    return base


async def _read(consumer: AIOKafkaConsumer, count: int, timeout_s: float, on_record: Any) -> None:
    seen = 0
    async with asyncio.timeout(timeout_s):
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=200, max_records=2000)).values():
                for record in records:
                    on_record(record)
                    seen += 1


async def _consumer(settings: HubSettings, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers(),
        group_id=f"bench-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    while not consumer.assignment():  # joined: the clock must not include the group join
        await asyncio.sleep(0.05)
    return consumer


def _producer(settings: HubSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(),
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
    )


async def raw_pipe(settings: HubSettings, events: int, payload_bytes: int) -> PipeResult:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    consumer = await _consumer(settings, topic)
    producer = _producer(settings)
    await producer.start()
    latencies: list[float] = []

    def parsed(record: Any) -> None:
        latencies.append((time.perf_counter() - json.loads(record.value)["sent"]) * 1000)

    try:
        started = time.perf_counter()
        reader = asyncio.create_task(_read(consumer, events, 120, parsed))
        for n in range(events):
            body = _payload(n, payload_bytes)
            body["sent"] = time.perf_counter()
            await producer.send(topic, json.dumps(body).encode(), key=body["case"].encode())
        await producer.flush()
        await reader
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
    return PipeResult("raw aiokafka pipe", events, elapsed, tuple(latencies))


def _bench_definition(in_topic: str, out_topic: str) -> ServiceDefinition:
    async def record_and_forward(msg: Incoming[Any], tx: Transaction) -> None:
        await tx.conn.execute(
            "INSERT INTO effects (case_id, event_id) VALUES ($1, $2)", msg.case_id, msg.envelope.id
        )
        await tx.emit(
            msg.data, topic=out_topic, business_process_id=msg.case_id, reference_id=msg.envelope.id
        )

    def routes(_ctx: ServiceContext) -> Sequence[Route]:
        return (Route(in_topic, "hub.bench", {DepartureConfirmed.event_type: record_and_forward}),)

    return ServiceDefinition(
        name="bench", migrations_package="hub.benchmark.migrations", topics=(out_topic,), routes=routes
    )


async def hub_hop(settings: HubSettings, events: int) -> PipeResult:
    run = uuid.uuid4().hex[:8]
    in_topic, out_topic = f"bench.hop.in.{run}", f"bench.hop.out.{run}"
    await ensure_topics(settings, [in_topic, out_topic])
    runtime = ServiceRuntime(_bench_definition(in_topic, out_topic), settings)
    await runtime.start()
    consumer = await _consumer(settings, out_topic)
    producer = _producer(settings)
    await producer.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []

    def forwarded(record: Any) -> None:
        latencies.append((time.perf_counter() - sent[record.key.decode()]) * 1000)

    try:
        async with asyncio.timeout(60):
            while not (await runtime.readiness())["ok_partitions"]:
                await asyncio.sleep(0.1)
        data = DepartureConfirmed(municipality=KRIENS, confirmed_on=dt.date(2026, 12, 1))
        value = data.model_dump_json().encode()
        started = time.perf_counter()
        reader = asyncio.create_task(_read(consumer, events, 300, forwarded))
        for n in range(events):
            case_id = f"bench-{run}-{n}"
            envelope = Envelope.new(
                data, source="urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste", business_process_id=case_id
            )
            with tracer().start_as_current_span(f"send {in_topic}"):
                headers = envelope.to_headers() + [
                    (k, v.encode()) for k, v in current_trace_headers().items()
                ]
            sent[case_id] = time.perf_counter()
            await producer.send(in_topic, value, key=case_id.encode(), headers=headers)
        await producer.flush()
        await reader
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
        await runtime.stop()
    return PipeResult("hub hop (traced)", events, elapsed, tuple(latencies))


async def run_bench(settings: HubSettings, events: int, payload_bytes: int) -> BenchReport:
    raw = await raw_pipe(settings, events, payload_bytes)
    hop = await hub_hop(settings, events)
    return BenchReport(raw, hop)


def format_report(report: BenchReport, *, broker: str) -> str:
    lines = [
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, broker: {broker}",
        f"{'pipe':<20} {'events':>7} {'seconds':>8} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    for result in (report.raw, report.hop):
        lines.append(
            f"{result.name:<20} {result.events:>7} {result.seconds:>8.2f} {result.per_second:>9.0f} "
            f"{result.percentile(50):>8.1f} {result.percentile(99):>8.1f}"
        )
    lines.append(f"ratio hub hop / raw pipe (events/s): {report.ratio:.3f}")
    return "\n".join(lines)


def main(*, events: int, payload_bytes: int) -> int:
    from hub.embedded.stack import EmbeddedStack

    settings = HubSettings()
    configure_logging("WARNING", service="bench")
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as state:
        stack = None
        if settings.kafka_bootstrap_servers is None or settings.database_url is None:
            stack = EmbeddedStack(Path(state), smtp=False)
            stack.start()
            assert stack.kafka is not None
            assert stack.postgres is not None
            settings = settings.model_copy(
                update={
                    "kafka_bootstrap_servers": stack.kafka.bootstrap_servers,
                    "kafka_enable_idempotence": False,
                    "database_url": SecretStr(stack.postgres.dsn),
                    "state_dir": Path(state),
                }
            )
        try:
            provider = setup_tracing("bench", settings)
            provider.add_span_processor(BatchSpanProcessor(_DroppingExporter()))
            report = asyncio.run(run_bench(settings, events, payload_bytes))
            provider.shutdown()
        finally:
            if stack is not None:
                stack.stop()
    broker = "embedded Tansu" if stack is not None else settings.bootstrap_servers()
    print(f"events={events} payload~{payload_bytes}B; tracing on (spans batched, export dropped)")
    print(format_report(report, broker=broker))
    return 0
