"""Shutdown: what SIGTERM triggers (``ServiceRuntime.stop``) and what a cut-off leaves behind.

A real ServiceRuntime (FastStream subscriber, embedded broker, PostgreSQL) on a topic of
one partition. The handler writes an effect row and emits one outbox event per record.

* A record in flight when ``stop()`` is called finishes within ``HUB_SHUTDOWN_GRACE_S``: its
  effect commits, its offset is committed (a second runtime in the same group does not
  see it again, and does see the next record), and the event it emitted is on Kafka by
  the time ``stop()`` returns (the relay has stopped by then: only the final flush can
  have published it).
* A record cut off by the grace period, or whose offset commit never happened although its
  effect did (a crash in between), is delivered again and applied exactly once (inbox).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from contracts import KRIENS, DepartureConfirmed, Envelope, TaxRecordUpdated, header_value
from hub.runtime.consumer import Outcome, Route
from hub.runtime.kafka import ensure_topics
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from hub.runtime.service import ServiceContext, ServiceDefinition, ServiceRuntime
from hub.runtime.settings import HubSettings

pytestmark = pytest.mark.asyncio

SCHEMA = "shutdown_test"
HANDLER_S = 1.5  # how long the in-flight record takes after stop() was called
GRACE_S = 10.0  # HUB_SHUTDOWN_GRACE_S for the graceful case: far more than the handler needs
SHORT_GRACE_S = 0.5  # HUB_SHUTDOWN_GRACE_S when the record must be cut off


@dataclass
class Scenario:
    """One test's topic, group and what its runtimes' handler saw."""

    settings: HubSettings
    topic: str = field(default_factory=lambda: f"test.shutdown.{uuid.uuid4().hex[:8]}")
    group: str = field(default_factory=lambda: f"hub.test.shutdown.{uuid.uuid4().hex[:8]}")
    calls: list[tuple[str, str]] = field(default_factory=list)  # (runtime, event id) per handler call
    started: dict[str, asyncio.Event] = field(default_factory=dict)  # event id -> handler entered
    # event id -> what the handler awaits after writing, before its transaction commits
    hold: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)

    @property
    def out_topic(self) -> str:
        return f"{self.topic}.out"

    def runtime(self, label: str) -> ServiceRuntime:
        async def handler(msg: Incoming[Any], tx: Transaction) -> None:
            event_id = msg.envelope.id
            self.calls.append((label, event_id))
            await tx.conn.execute("INSERT INTO effects (event_id, runtime) VALUES ($1, $2)", event_id, label)
            await tx.emit(
                TaxRecordUpdated(updated_on=dt.date(2026, 12, 1)),
                topic=self.out_topic,
                business_process_id=msg.case_id,
                reference_id=event_id,
            )
            self.started.setdefault(event_id, asyncio.Event()).set()
            wait = self.hold.get(event_id)
            if wait is not None:
                await wait()

        def routes(_ctx: ServiceContext) -> list[Route]:
            return [Route(self.topic, self.group, {DepartureConfirmed.event_type: handler})]

        definition = ServiceDefinition(
            name=SCHEMA,
            migrations_package="tests.integration.runtime.shutdown_migrations",
            topics=(self.topic, self.out_topic),
            routes=routes,
        )
        return ServiceRuntime(definition, self.settings)

    def entered(self, event_id: str) -> asyncio.Event:
        return self.started.setdefault(event_id, asyncio.Event())


@pytest_asyncio.fixture
async def producer(hub_settings: HubSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=hub_settings.bootstrap_servers(), enable_idempotence=False)
    await producer.start()
    yield producer
    await producer.stop()


@pytest_asyncio.fixture
async def db(hub_settings: HubSettings) -> AsyncIterator[asyncpg.Connection]:
    """The test's own view of the runtime's tables, independent of the runtimes' pools."""
    conn = await asyncpg.connect(hub_settings.database_dsn(), server_settings={"search_path": SCHEMA})
    yield conn
    await conn.close()


async def _send(producer: AIOKafkaProducer, topic: str, event_id: str) -> int:
    """Publish one record to partition 0; its offset."""
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on=dt.date(2026, 12, 1))
    envelope = Envelope.new(
        data, source="urn:test:shutdown", business_process_id=f"case-{event_id}", event_id=event_id
    )
    metadata = await producer.send_and_wait(
        topic, data.model_dump_json().encode(), headers=envelope.to_headers(), partition=0
    )
    return int(metadata.offset)


async def _open_group(settings: HubSettings, topic: str, group: str) -> None:
    """A short-lived first member, so the runtimes never hold the group's generation 0.

    Tansu starts a group at generation 0, and aiokafka sends no LeaveGroup from generation
    0: a runtime that was the group's first member would leave only by its session timing
    out (10 s), and the next runtime would wait for that. This member's 1 s session ends
    on its own; what the tests check does not depend on it.
    """
    await ensure_topics(settings, [topic])
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers(),
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=1000,
        heartbeat_interval_ms=300,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
    finally:
        await consumer.stop()


async def _start(runtime: ServiceRuntime) -> ServiceRuntime:
    await runtime.start()
    deadline = asyncio.get_running_loop().time() + 30
    while not (await runtime.readiness())["assigned_partitions"]:
        assert asyncio.get_running_loop().time() < deadline, "no partitions assigned"
        await asyncio.sleep(0.05)
    return runtime


async def _wait_for(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _committed(settings: HubSettings, group: str, topic: str) -> int | None:
    """The group's committed offset of partition 0, where a new member would start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers(), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    return None if committed is None else int(committed)


async def _published(settings: HubSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on partition 0 of ``topic`` right now (up to the current end offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        async with asyncio.timeout(15):
            while await consumer.position(partition) < end:
                records += (await consumer.getmany(partition, timeout_ms=500)).get(partition, [])
    finally:
        await consumer.stop()
    return records


def _references(records: list[ConsumerRecord[bytes, bytes]]) -> list[str | None]:
    return [header_value(record.headers, "ce_referenceid") for record in records]


async def _effects(db: asyncpg.Connection) -> list[tuple[str, str]]:
    rows = await db.fetch("SELECT event_id, runtime FROM effects ORDER BY seq")
    return [(row["event_id"], row["runtime"]) for row in rows]


async def test_stop_lets_the_in_flight_record_finish_commit_its_offset_and_publish_its_events(
    hub_settings: HubSettings, producer: AIOKafkaProducer, db: asyncpg.Connection
) -> None:
    s = Scenario(hub_settings.model_copy(update={"kafka_topic_partitions": 1, "shutdown_grace_s": GRACE_S}))
    s.hold["in-flight"] = lambda: asyncio.sleep(HANDLER_S)
    await _open_group(s.settings, s.topic, s.group)
    first = await _start(s.runtime("first"))
    try:
        in_flight = await _send(producer, s.topic, "in-flight")
        await asyncio.wait_for(s.entered("in-flight").wait(), 30)
        # Sent once the record is in its handler, so it is not in the same batch: a batch in
        # flight finishes as a whole, and this record is the next batch's.
        await _send(producer, s.topic, "next")
        effects_before_stop = await _effects(db)
    except BaseException:
        await first.stop()
        raise
    loop = asyncio.get_running_loop()
    began = loop.time()
    await first.stop()  # what SIGTERM triggers
    took = loop.time() - began
    # Right after stop() returned, before anything else runs: the record's effect, its
    # offset and the event it emitted are all durable.
    out = await _published(s.settings, s.out_topic)
    committed = await _committed(s.settings, s.group, s.topic)
    effects_after_stop = await _effects(db)
    unpublished = await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")

    second = await _start(s.runtime("second"))
    try:

        async def next_applied() -> bool:
            return ("next", "second") in await _effects(db)

        await _wait_for(next_applied, "the next record in the second runtime")
        await asyncio.sleep(0.5)  # room for a wrong redelivery of the in-flight record to show
    finally:
        await second.stop()

    assert effects_before_stop == []  # the handler was still in flight when stop() was called
    assert HANDLER_S - 0.1 <= took < GRACE_S, f"stop() took {took:.2f}s"
    assert effects_after_stop == [("in-flight", "first")]
    assert committed == in_flight + 1
    assert _references(out) == ["in-flight"]  # published by the final flush, before stop() returned
    assert unpublished == 0
    # The new member of the group starts after the in-flight record: it sees the next one only.
    assert s.calls == [("first", "in-flight"), ("second", "next")]
    assert second.processors[0].counts[Outcome.PROCESSED] == 1
    assert second.processors[0].counts[Outcome.DUPLICATE] == 0
    assert await _effects(db) == [("in-flight", "first"), ("next", "second")]
    assert _references(await _published(s.settings, s.out_topic)) == ["in-flight", "next"]


async def test_a_record_cut_off_by_the_grace_period_is_delivered_again_and_applied_once(
    hub_settings: HubSettings, producer: AIOKafkaProducer, db: asyncpg.Connection
) -> None:
    s = Scenario(
        hub_settings.model_copy(update={"kafka_topic_partitions": 1, "shutdown_grace_s": SHORT_GRACE_S})
    )
    never = asyncio.Event()
    s.hold["stuck"] = never.wait  # in the first runtime only: the second one has no hold for it
    await _open_group(s.settings, s.topic, s.group)
    first = await _start(s.runtime("first"))
    try:
        stuck = await _send(producer, s.topic, "stuck")
        await asyncio.wait_for(s.entered("stuck").wait(), 30)
    finally:
        await first.stop()  # the grace period passes; the record is cancelled mid-transaction
    committed = await _committed(s.settings, s.group, s.topic)
    effects_after_stop = await _effects(db)
    outbox_after_stop = await db.fetchval("SELECT count(*) FROM outbox")
    del s.hold["stuck"]

    second = await _start(s.runtime("second"))
    try:

        async def applied() -> bool:
            return bool(await _effects(db))

        await _wait_for(applied, "the cut-off record in the second runtime")
        await _send(producer, s.topic, "after")

        async def after_applied() -> bool:
            return ("after", "second") in await _effects(db)

        await _wait_for(after_applied, "the record after it")
    finally:
        await second.stop()

    assert not never.is_set()
    assert committed is None or committed <= stuck  # its offset was not committed
    assert effects_after_stop == []  # its transaction was rolled back: no effect, no outbox row
    assert outbox_after_stop == 0
    assert s.calls == [("first", "stuck"), ("second", "stuck"), ("second", "after")]
    assert await _effects(db) == [("stuck", "second"), ("after", "second")]
    assert second.processors[0].counts[Outcome.PROCESSED] == 2
    assert _references(await _published(s.settings, s.out_topic)) == ["stuck", "after"]


async def test_a_record_applied_but_not_committed_before_a_crash_is_delivered_again_and_dropped(
    hub_settings: HubSettings,
    producer: AIOKafkaProducer,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The crash window between the effect's commit and the offset's commit: the inbox closes it."""
    s = Scenario(
        hub_settings.model_copy(update={"kafka_topic_partitions": 1, "shutdown_grace_s": SHORT_GRACE_S})
    )
    commit_attempted = asyncio.Event()
    original_commit = AIOKafkaConsumer.commit

    async def commit_never_returns(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        if s.topic in {tp.topic for tp in (offsets or {})}:
            commit_attempted.set()
            await asyncio.Event().wait()  # the process dies here (cancelled by the grace period)
        await original_commit(self, offsets)

    monkeypatch.setattr(AIOKafkaConsumer, "commit", commit_never_returns)
    await _open_group(s.settings, s.topic, s.group)
    first = await _start(s.runtime("first"))
    try:
        window = await _send(producer, s.topic, "crash-window")
        await asyncio.wait_for(commit_attempted.wait(), 30)
    finally:
        await first.stop()
    monkeypatch.setattr(AIOKafkaConsumer, "commit", original_commit)
    committed = await _committed(s.settings, s.group, s.topic)
    effects_after_crash = await _effects(db)

    second = await _start(s.runtime("second"))
    try:
        await _send(producer, s.topic, "after")

        async def after_applied() -> bool:
            return ("after", "second") in await _effects(db)

        await _wait_for(after_applied, "the record after the crash window")
    finally:
        await second.stop()

    assert committed is None or committed <= window  # the offset commit never happened
    assert effects_after_crash == [("crash-window", "first")]  # but the effect did
    # Delivered again, recognised by the inbox, not handed to the handler again.
    assert second.processors[0].counts[Outcome.DUPLICATE] == 1
    assert second.processors[0].counts[Outcome.PROCESSED] == 1
    assert s.calls == [("first", "crash-window"), ("second", "after")]
    assert await _effects(db) == [("crash-window", "first"), ("after", "second")]
    assert await db.fetchval("SELECT count(*) FROM outbox") == 2
    assert _references(await _published(s.settings, s.out_topic)) == ["crash-window", "after"]


async def test_a_backlog_is_taken_in_batches_and_a_batch_in_flight_at_stop_finishes_as_a_whole(
    hub_settings: HubSettings, producer: AIOKafkaProducer, db: asyncpg.Connection
) -> None:
    """Records waiting when a runtime starts arrive as one batch (one transaction, one
    offset commit); stop() lets the batch in flight finish, commit its offsets as a whole
    and publish its events, and the next member starts after it."""
    s = Scenario(hub_settings.model_copy(update={"kafka_topic_partitions": 1, "shutdown_grace_s": GRACE_S}))
    backlog = [f"backlog-{n}" for n in range(40)]
    s.hold[backlog[-1]] = lambda: asyncio.sleep(HANDLER_S)
    await _open_group(s.settings, s.topic, s.group)
    offsets = [await _send(producer, s.topic, event_id) for event_id in backlog]
    first = await _start(s.runtime("first"))
    try:
        await asyncio.wait_for(s.entered(backlog[-1]).wait(), 30)
        effects_in_flight = await _effects(db)
    finally:
        await first.stop()
    committed = await _committed(s.settings, s.group, s.topic)
    batch_count = _sample(first, "hub_consumer_batch_records_count")
    batch_sum = _sample(first, "hub_consumer_batch_records_sum")

    # The batch in flight is one transaction: none of its effects is visible before it commits
    # (earlier batches, if the broker handed the backlog over in parts, are).
    assert effects_in_flight == [(event_id, "first") for event_id in backlog[: len(effects_in_flight)]]
    assert len(effects_in_flight) < len(backlog) - 1
    assert await _effects(db) == [(event_id, "first") for event_id in backlog]
    assert committed == offsets[-1] + 1
    assert batch_sum == len(backlog)
    assert batch_count < len(backlog), f"{batch_count} batches for {len(backlog)} records"
    assert _references(await _published(s.settings, s.out_topic)) == backlog


def _sample(runtime: ServiceRuntime, name: str) -> float:
    """The value of a metric sample of the runtime's registry (summed over its labels)."""
    return sum(
        sample.value
        for metric in runtime.service_metrics.registry.collect()
        for sample in metric.samples
        if sample.name == name
    )
