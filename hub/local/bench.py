"""``hub bench``: what one hub hop costs compared with a raw Kafka pipe, on the same broker.

This module measures the hop; ``main`` also runs the flow (whole relocation cases through a
started hub, ``hub.local.bench_flow``) and ends with one line of key=value figures, the
hop's ratio, the flow's saturation rate and its p99 latency at half that rate
(``hub.local.bench_figures.summary_line``).

Two pipes run one after the other in one process, against the same broker and database
(an embedded Tansu broker and PostgreSQL started for the run, or the external ones when
``HUB_KAFKA_BOOTSTRAP_SERVERS`` and ``HUB_DATABASE_URL`` are set):

(a) raw pipe: aiokafka producer -> topic -> aiokafka consumer -> ``json.loads``. The floor
    any Kafka consumer in this process pays; the publish time travels in a header.
(b) one hub hop: partner-style CloudEvents (binary mode, with a traceparent) are consumed
    by a real ``ServiceRuntime`` running the bench service: FastStream subscriber, envelope
    and contract validation, inbox claim, an effect row and an outbox row in one
    transaction, offset commit. The runtime's outbox relay publishes the emitted event;
    a plain consumer reads it and matches it to its input by business process id (the
    Kafka key). Tracing is on as in a service (``setup_tracing``, the asyncpg
    instrumentation, a ``BatchSpanProcessor``), but the exporter discards the spans: what
    is measured is creating and batching spans, not shipping them to a collector.

Why: the ratio (b)/(a) says how much of the broker's capacity one hub hop keeps. Absolute
figures on a shared 2-core machine are noisy; the ratio of two pipes measured in one run
on the same broker is the figure to compare across changes.

Throughput is events / (first publish .. last event read). Latency is per event: read time
minus publish time, both ``time.perf_counter()`` in this process. Every pipe publishes its
N events as fast as the producer takes them, so latency includes the time an event waits
behind the others (queueing), which grows with N; it is latency under saturation.

Both pipes build their records before the clock starts (the partner's envelopes too: the
partner is not the hub), and both read with the same plain aiokafka consumer settings.

A benchmark prints figures and asserts nothing about speed. It fails only when it cannot
measure (the infrastructure is away; an event is dead-lettered or never arrives), with a
``HubError`` that the CLI prints as one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import os
import platform
import secrets
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pydantic import SecretStr

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.errors import HubError
from hub.local.bench_figures import percentile, summary_line
from hub.local.bench_flow import FlowOptions, run_flow
from hub.runtime.consumer import Outcome, Route
from hub.runtime.kafka import client_config, ensure_topics
from hub.runtime.logs import configure_logging
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from hub.runtime.service import ServiceContext, ServiceDefinition, ServiceRuntime
from hub.runtime.settings import HubSettings
from hub.runtime.telemetry import setup_tracing

# A pipe that delivers nothing new for this long is broken, not slow; an absolute limit
# would instead fail large runs (--events 100000 at a few hundred events/s).
STALL_TIMEOUT_S = 30.0
# Group joins take seconds on Tansu (session timeouts); they must end before the clock starts.
JOIN_TIMEOUT_S = 60.0
SENT_HEADER = "bench-sent"  # raw pipe: publish time, a big-endian double of perf_counter()
PARTNER_SOURCE = "urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste"
# Tansu answers a fetch for a caught-up partition late, after a fraction of the fetch's
# max wait (aiokafka's default 500 ms gave ~120 ms for every new record; 10 ms gave ~4 ms).
# The bench's own readers wait briefly, so the clock stops when the last event is on the
# broker, not when a long poll ends. The hub's runtime keeps its own consumer settings.
READER_FETCH_MAX_WAIT_MS = 10
# The producer's send() only appends to a batch and does not yield while there is room;
# yielding every so many sends lets the consumer (and in the hop, the runtime) run while
# the producer is still publishing, as they would in separate processes.
YIELD_EVERY = 64


class BenchError(HubError):
    """The benchmark could not measure (events lost, dead-lettered, broker away)."""


@dataclass(frozen=True)
class PipeResult:
    """One pipe's figures; ``events`` counts distinct events read, not events requested."""

    name: str
    events: int
    seconds: float
    latencies_ms: tuple[float, ...]
    value_bytes: int  # size of one record value as published
    duplicates: int = 0  # records read twice (at-least-once delivery); not in the figures

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.inf

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile: a latency some event really had."""
        return percentile(self.latencies_ms, p)


@dataclass(frozen=True)
class BenchReport:
    requested: int
    payload_bytes: int
    raw: PipeResult
    hop: PipeResult

    @property
    def ratio(self) -> float:
        """(b)/(a) of events per second: the share of the raw pipe's rate one hub hop keeps."""
        return self.hop.per_second / self.raw.per_second


class DiscardingExporter(SpanExporter):
    """Counts finished spans and drops them: tracing costs what the SDK does, no export I/O."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)  # called from the processor's single worker thread
        return SpanExportResult.SUCCESS


class _Tally:
    """First arrival of each expected event: its latency, and when the last one came."""

    def __init__(self, pipe: str, expected: int) -> None:
        self.pipe = pipe
        self.expected = expected
        self.latencies_ms: dict[Hashable, float] = {}
        self.duplicates = 0
        self.last_at = 0.0

    @property
    def complete(self) -> bool:
        return len(self.latencies_ms) >= self.expected

    def arrived(self, key: Hashable, sent: float, at: float) -> None:
        if key in self.latencies_ms:
            self.duplicates += 1
            return
        self.latencies_ms[key] = (at - sent) * 1000
        self.last_at = at

    def result(self, name: str, started: float, value_bytes: int) -> PipeResult:
        return PipeResult(
            name=name,
            events=len(self.latencies_ms),
            seconds=self.last_at - started,
            latencies_ms=tuple(self.latencies_ms.values()),
            value_bytes=value_bytes,
            duplicates=self.duplicates,
        )


async def _read_all(
    consumer: AIOKafkaConsumer,
    tally: _Tally,
    on_record: Callable[[Any], None],
    *,
    check: Callable[[], str | None] = lambda: None,
) -> None:
    """Read until every expected event came; fail if progress stops or ``check`` objects."""
    last_progress, seen = time.perf_counter(), 0
    while not tally.complete:
        batches = await consumer.getmany(timeout_ms=100, max_records=2000)
        for records in batches.values():
            for record in records:
                on_record(record)
        problem = check()
        if problem is not None:
            raise BenchError(f"{tally.pipe}: {problem}")
        now = time.perf_counter()
        if len(tally.latencies_ms) > seen:
            last_progress, seen = now, len(tally.latencies_ms)
        elif now - last_progress > STALL_TIMEOUT_S:
            raise BenchError(
                f"{tally.pipe}: {seen} of {tally.expected} events read, none for {STALL_TIMEOUT_S:.0f} s"
            )


async def _measure(publish: Callable[[], Awaitable[None]], read: Coroutine[Any, Any, None]) -> None:
    """Publish while the reader runs; a failing publish cancels the reader.

    A reader that fails meanwhile is reported once publishing ends (it takes a second or less).
    """
    reader = asyncio.ensure_future(read)
    try:
        await publish()
        await reader
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, BenchError):
                await reader


async def _joined_consumer(settings: HubSettings, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        topic,
        **client_config(settings, client_id="hub-bench-reader"),
        group_id=f"hub-bench-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=READER_FETCH_MAX_WAIT_MS,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(JOIN_TIMEOUT_S):
            # getmany() drives the group join; nothing is on the fresh topic yet.
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
    except TimeoutError:
        await consumer.stop()
        raise BenchError(f"the reader of {topic} got no partitions within {JOIN_TIMEOUT_S:.0f} s") from None
    except BaseException:
        await consumer.stop()
        raise
    return consumer


def _producer(settings: HubSettings) -> AIOKafkaProducer:
    # acks=all as the hub's own producer; idempotence follows the settings (off on Tansu).
    # No compression: (a) is the floor, and partners decide their own compression.
    return AIOKafkaProducer(
        **client_config(settings, client_id="hub-bench-producer"),
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
    )


def _raw_value(n: int, payload_bytes: int) -> bytes:
    """A JSON object of ``payload_bytes`` bytes (or the smallest possible one)."""
    body = {"n": n, "case": f"bench-{n}", "pad": ""}
    body["pad"] = "x" * max(0, payload_bytes - len(json.dumps(body)))
    return json.dumps(body).encode()


async def raw_pipe(settings: HubSettings, events: int, payload_bytes: int) -> PipeResult:
    """(a) aiokafka producer -> fresh topic -> aiokafka consumer -> ``json.loads``."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    # Values are built before the clock starts; the pipe, not the test data, is measured.
    values = [_raw_value(n, payload_bytes) for n in range(events)]
    tally = _Tally("raw pipe", events)
    pack_time = struct.Struct("!d")

    def parsed(record: Any) -> None:
        body = json.loads(record.value)
        at = time.perf_counter()
        sent = next(value for name, value in record.headers if name == SENT_HEADER)
        tally.arrived(body["n"], pack_time.unpack(sent)[0], at)

    consumer: AIOKafkaConsumer | None = None
    producer = _producer(settings)
    try:
        consumer = await _joined_consumer(settings, topic)
        await producer.start()

        async def publish() -> None:
            acks = []
            for n, value in enumerate(values):
                headers = [(SENT_HEADER, pack_time.pack(time.perf_counter()))]
                acks.append(await producer.send(topic, value, key=b"bench-%d" % n, headers=headers))
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await asyncio.gather(*acks)  # surfaces a failed send instead of waiting for a stall

        started = time.perf_counter()
        await _measure(publish, _read_all(consumer, tally, parsed))
    except KafkaError as error:
        raise BenchError(f"raw pipe: Kafka failed: {error!r}") from error
    finally:
        await producer.stop()
        if consumer is not None:
            await consumer.stop()
    return tally.result("(a) raw aiokafka pipe", started, len(values[-1]))


def bench_definition(in_topic: str, out_topic: str, group_id: str) -> ServiceDefinition:
    """The bench service: one route, one effect row, one emitted event per input."""

    async def record_and_forward(msg: Incoming[Any], tx: Transaction) -> None:
        await tx.conn.execute(
            "INSERT INTO effects (case_id, event_id) VALUES ($1, $2)", msg.case_id, msg.envelope.id
        )
        # Keyed by the case (emit's default key): the reader matches output to input by it.
        await tx.emit(
            msg.data, topic=out_topic, business_process_id=msg.case_id, reference_id=msg.envelope.id
        )

    def routes(_ctx: ServiceContext) -> Sequence[Route]:
        return (Route(in_topic, group_id, {DepartureConfirmed.event_type: record_and_forward}),)

    return ServiceDefinition(
        name="bench", migrations_package="hub.local.benchmark.migrations", topics=(out_topic,), routes=routes
    )


def _partner_event(payload_bytes: int) -> DepartureConfirmed:
    """A real contract whose JSON is about ``payload_bytes`` (``remarks`` holds at most 500)."""
    fields: dict[str, Any] = {"municipality": KRIENS, "confirmed_on": dt.date(2026, 12, 1)}
    # '"remarks":null' becomes '"remarks":"xx.."': the quotes replace the four letters of null.
    room = payload_bytes - len(DepartureConfirmed(**fields).model_dump_json()) + len("null") - len('""')
    return (
        DepartureConfirmed(**fields, remarks="x" * min(500, room))
        if room > 0
        else DepartureConfirmed(**fields)
    )


def _partner_headers(data: DepartureConfirmed, case_id: str) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode headers and a sampled W3C traceparent, as a partner sends them.

    The partner's trace context is made up here rather than taken from a span: the partner
    is another process, so its spans are not this process's cost (nor its span count).
    """
    envelope = Envelope.new(data, source=PARTNER_SOURCE, business_process_id=case_id)
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    return [*envelope.to_headers(), ("traceparent", traceparent.encode())]


async def _wait_until_consuming(runtime: ServiceRuntime) -> None:
    try:
        async with asyncio.timeout(JOIN_TIMEOUT_S):
            while not (await runtime.readiness())["assigned_partitions"]:
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise BenchError(
            f"hub hop: the bench service got no partitions within {JOIN_TIMEOUT_S:.0f} s"
        ) from None


async def _count_effects(runtime: ServiceRuntime, run: str) -> int:
    assert runtime.pool is not None
    async with runtime.pool.acquire() as conn:
        return int(
            await conn.fetchval("SELECT count(*) FROM effects WHERE case_id LIKE $1", f"bench-{run}-%")
        )


async def hub_hop(settings: HubSettings, events: int, payload_bytes: int = 400) -> PipeResult:
    """(b) partner CloudEvent -> ServiceRuntime (inbox, effect, outbox) -> relay -> reader."""
    run = uuid.uuid4().hex[:8]
    # Fresh topics and group per run: nothing left from an earlier run is read or skipped.
    in_topic, out_topic = f"bench.hop.in.{run}", f"bench.hop.out.{run}"
    runtime = ServiceRuntime(bench_definition(in_topic, out_topic, f"hub.bench.{run}"), settings)
    data = _partner_event(payload_bytes)
    value = data.model_dump_json().encode()
    case_ids = [f"bench-{run}-{n}" for n in range(events)]
    # Envelopes and trace headers are built before the clock: partner-side work is not the hop.
    prepared = [(case_id, _partner_headers(data, case_id)) for case_id in case_ids]
    tally = _Tally("hub hop", events)
    sent_at: dict[str, float] = {}

    def forwarded(record: Any) -> None:
        at = time.perf_counter()
        case_id = record.key.decode()
        if case_id not in sent_at:
            raise BenchError(f"hub hop: unexpected record with key {case_id!r} on {out_topic}")
        tally.arrived(case_id, sent_at[case_id], at)

    consumer: AIOKafkaConsumer | None = None
    producer = _producer(settings)
    stopped: asyncio.Future[None] | None = None
    try:
        await runtime.start()
        stopped = asyncio.ensure_future(runtime.wait())
        consumer = await _joined_consumer(settings, out_topic)
        await _wait_until_consuming(runtime)
        await producer.start()

        def healthy() -> str | None:
            # Fail at once rather than after the stall timeout when events cannot come out.
            dead = sum(p.counts[Outcome.DEAD_LETTERED] for p in runtime.processors)
            if dead:
                return f"{dead} events dead-lettered by the bench service (table bench.dead_letters)"
            if stopped is not None and stopped.done():
                return "the bench service stopped (a background task crashed; see the log)"
            return None

        async def publish() -> None:
            acks = []
            for n, (case_id, headers) in enumerate(prepared):
                sent_at[case_id] = time.perf_counter()
                acks.append(await producer.send(in_topic, value, key=case_id.encode(), headers=headers))
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            await asyncio.gather(*acks)

        started = time.perf_counter()
        await _measure(publish, _read_all(consumer, tally, forwarded, check=healthy))
        effects = await _count_effects(runtime, run)
    except KafkaError as error:
        raise BenchError(f"hub hop: Kafka failed: {error!r}") from error
    finally:
        if stopped is not None:
            stopped.cancel()
        await producer.stop()
        if consumer is not None:
            await consumer.stop()
        await runtime.stop()
    if effects != events:
        raise BenchError(f"hub hop: {events} events went through but {effects} effect rows were written")
    return tally.result("(b) hub hop, traced", started, len(value))


async def run_bench(settings: HubSettings, events: int, payload_bytes: int) -> BenchReport:
    """Both pipes, one after the other, on the broker and database ``settings`` name.

    Tracing is whatever tracer provider the process has; ``main`` installs the measured one.
    """
    if events < 1:
        raise BenchError("the benchmark needs at least one event")
    raw = await raw_pipe(settings, events, payload_bytes)
    hop = await hub_hop(settings, events, payload_bytes)
    return BenchReport(events, payload_bytes, raw, hop)


def format_report(report: BenchReport, *, broker: str, database: str, spans: int | None = None) -> str:
    lines = [
        f"hub bench: N={report.requested} events per pipe, ~{report.payload_bytes} B of JSON each",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"broker: {broker}; database: {database}",
        f"bench readers: aiokafka, fetch_max_wait_ms={READER_FETCH_MAX_WAIT_MS}; "
        "bench producers: acks=all, linger_ms=5, no compression (the relay: the hub's producer settings)",
    ]
    if spans is not None:
        lines.append(
            f"tracing in (b): TracerProvider + BatchSpanProcessor, spans discarded by the exporter "
            f"({spans} spans, {spans / report.requested:.1f} per event)"
        )
    header = (
        f"{'pipe':<24} {'events':>7} {'bytes':>6} {'seconds':>8} {'events/s':>9} {'p50 ms':>9} {'p99 ms':>9}"
    )
    lines += ["", header, "-" * len(header)]
    for result in (report.raw, report.hop):
        lines.append(
            f"{result.name:<24} {result.events:>7} {result.value_bytes:>6} {result.seconds:>8.2f} "
            f"{result.per_second:>9.0f} {result.percentile(50):>9.1f} {result.percentile(99):>9.1f}"
        )
    lines += [
        "-" * len(header),
        f"ratio (b)/(a) of events/s: {report.ratio:.3f}",
        "latency = read minus publish per event; all N are published at once, so it includes queueing.",
    ]
    duplicates = report.raw.duplicates + report.hop.duplicates
    if duplicates:
        lines.append(f"{duplicates} records arrived twice (at-least-once) and were not counted again.")
    return "\n".join(lines)


@contextlib.contextmanager
def _infrastructure(settings: HubSettings, state_dir: Path) -> Iterator[tuple[HubSettings, str, str]]:
    """Settings naming a broker and a database: the configured ones, else embedded ones."""
    from hub.local.embedded.stack import EmbeddedStack

    need_kafka = settings.kafka_bootstrap_servers is None
    need_postgres = settings.database_url is None
    if not (need_kafka or need_postgres):
        yield settings, f"external ({settings.bootstrap_servers()})", "external"
        return
    stack = EmbeddedStack(state_dir, kafka=need_kafka, postgres=need_postgres, smtp=False)
    stack.start()
    try:
        update: dict[str, Any] = {"state_dir": state_dir}
        if stack.kafka is not None:
            # Tansu answers InitProducerId with an error: no idempotent producer on it.
            update |= {
                "kafka_bootstrap_servers": stack.kafka.bootstrap_servers,
                "kafka_enable_idempotence": False,
            }
        if stack.postgres is not None:
            update["database_url"] = SecretStr(stack.postgres.dsn)
        broker = "embedded Tansu" if need_kafka else f"external ({settings.bootstrap_servers()})"
        yield (
            settings.model_copy(update=update),
            broker,
            "embedded PostgreSQL" if need_postgres else "external",
        )
    finally:
        stack.stop()


def _measured_tracing(settings: HubSettings, exporter: SpanExporter) -> TracerProvider:
    """``setup_tracing`` as a service calls it, but exporting to ``exporter`` only.

    An exporter from the settings or OTEL_EXPORTER_OTLP_ENDPOINT would add export I/O to
    the figures, so neither is seen by ``setup_tracing`` here.
    """
    otlp = os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    try:
        provider = setup_tracing("bench", settings.model_copy(update={"traces_exporter": "none"}))
    finally:
        if otlp is not None:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
    # The schedule setup_tracing uses for real exporters, so batching behaves as in a service.
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    return provider


def measure_hop(events: int, payload_bytes: int) -> tuple[BenchReport, str]:
    """Both pipes on their own broker and database (embedded unless configured); the report
    and its text."""
    with (
        tempfile.TemporaryDirectory(prefix="hub-bench-") as state,
        # A throwaway state directory: its keys are made there, as hub up makes them.
        _infrastructure(HubSettings(local_secrets=True), Path(state)) as (settings, broker, database),
    ):
        exporter = DiscardingExporter()
        provider = _measured_tracing(settings, exporter)
        try:
            report = asyncio.run(run_bench(settings, events, payload_bytes))
        finally:
            provider.shutdown()  # flushes: the span count below is complete
    return report, format_report(report, broker=broker, database=database, spans=exporter.spans)


def _print(line: str) -> None:
    print(line, flush=True)  # a full run takes many minutes: each part shows as it ends


def _progress(line: str) -> None:
    # Beside the figures, not among them: stdout ends with the summary line.
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def main(
    *,
    events: int,
    payload_bytes: int,
    hop: bool,
    flow: FlowOptions | None,
) -> int:
    """``hub bench``: the hop (raw pipe vs one hub hop) and the flow (whole relocation cases;
    None: not run), each printed as it ends; the last line sums both up for comparing runs."""
    if events < 1:
        raise BenchError("--events must be at least 1")
    if not hop and flow is None:
        raise BenchError("nothing to measure: neither the hop nor the flow")
    configure_logging("WARNING", service="bench")
    # The runtime creates its topics itself, so FastStream's "topic creation is skipped in
    # consumer-only mode" warning says nothing here.
    logging.getLogger("hub.broker.bench").setLevel(logging.ERROR)
    hop_ratio: float | None = None
    cases_per_s: float | None = None
    p99_ms: float | None = None
    if hop:
        _progress(f"hop: {events} events through each pipe")
        report, text = measure_hop(events, payload_bytes)
        _print(text)
        hop_ratio = report.ratio
    if flow is not None:
        if hop:
            _print("")
        with tempfile.TemporaryDirectory(prefix="hub-bench-flow-") as state:
            flow_report = run_flow(flow, Path(state), _print, _progress)
        cases_per_s = flow_report.saturation.cases_per_s
        p99_ms = percentile(flow_report.half_rate.latencies_ms, 99)
    _print("")
    _print(
        "summary: hop_ratio = (b)/(a) events/s of the hop; cases_per_s = saturation run;"
        " p99_ms = report .. completed at half rate; nan = not run"
    )
    _print(summary_line(hop_ratio=hop_ratio, cases_per_s=cases_per_s, p99_ms=p99_ms))
    return 0
