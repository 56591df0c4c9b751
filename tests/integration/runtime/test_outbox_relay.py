"""The outbox relay against real PostgreSQL and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.errors import BrokerUnavailable
from hub.runtime.db import DATABASE_FAILURES
from hub.runtime.kafka import ensure_topics
from hub.runtime.outbox import OutboxRelay, Transaction, outbox_backlog
from hub.runtime.publisher import InMemoryPublisher, KafkaPublisher, OutgoingRecord
from hub.runtime.send_results import SendResult
from hub.runtime.settings import HubSettings
from hub.runtime.telemetry import tracer
from tests.fixtures.topics import event_ids, read_topic
from tests.integration.runtime.conftest import SCHEMA

pytestmark = pytest.mark.asyncio


def _event() -> DepartureConfirmed:
    return DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]


async def _emit(conn: asyncpg.Connection, topic: str, case_id: str) -> Envelope:
    return await Transaction(conn, source="urn:ch:lu:hub:service:test").emit(
        _event(), topic=topic, business_process_id=case_id
    )


def _relay(pool: asyncpg.Pool, publisher: object, batch_size: int = 100) -> OutboxRelay:
    return OutboxRelay(pool, publisher, schema=SCHEMA, batch_size=batch_size, poll_interval_s=0.2)  # type: ignore[arg-type]


async def _consume(settings: HubSettings, topic: str, count: int, timeout_s: float = 20) -> list[object]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        group_id=f"test-{uuid.uuid4()}",
    )
    await consumer.start()
    records: list[object] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    records.extend(part)
    finally:
        await consumer.stop()
    return records


async def test_committed_events_reach_kafka_with_ce_headers_and_the_writers_trace(
    pool: asyncpg.Pool, hub_settings: HubSettings
) -> None:
    topic = f"test.outbox.{uuid.uuid4().hex[:8]}"
    await ensure_topics(hub_settings, [topic])
    with tracer().start_as_current_span("handler") as span:
        async with pool.acquire() as conn, conn.transaction():
            envelope = await _emit(conn, topic, "case-42")
        writer_trace = format(span.get_span_context().trace_id, "032x")
    publisher = KafkaPublisher(hub_settings, client_id="test")
    await publisher.start()
    try:
        assert await _relay(pool, publisher).publish_batch() == 1
    finally:
        await publisher.stop()
    [record] = await _consume(hub_settings, topic, 1)
    headers = dict(record.headers)  # type: ignore[attr-defined]
    assert headers["ce_id"].decode() == envelope.id
    assert headers["ce_type"].decode() == DepartureConfirmed.event_type
    assert record.key == b"case-42"  # type: ignore[attr-defined]
    # The relay's send span is a child of the span that wrote the row: same trace.
    assert headers["traceparent"].decode().split("-")[1] == writer_trace
    async with pool.acquire() as conn:
        assert await outbox_backlog(conn) == 0


async def test_rolled_back_transaction_publishes_nothing(pool: asyncpg.Pool) -> None:
    publisher = InMemoryPublisher()
    await publisher.start()

    async def emit_then_fail() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await _emit(conn, "t", "case-1")
            raise RuntimeError("handler failed after emitting")

    with pytest.raises(RuntimeError, match="after emitting"):
        await emit_then_fail()
    assert await _relay(pool, publisher).publish_batch() == 0
    assert publisher.sent == []


async def test_rows_committed_out_of_order_are_not_skipped(pool: asyncpg.Pool) -> None:
    publisher = InMemoryPublisher()
    await publisher.start()
    relay = _relay(pool, publisher)
    slow = await pool.acquire()
    slow_tx = slow.transaction()
    await slow_tx.start()
    early = await _emit(slow, "t", "case-slow")  # takes the lower seq, commits last
    async with pool.acquire() as conn, conn.transaction():
        late = await _emit(conn, "t", "case-fast")
    assert await relay.publish_batch() == 1
    await slow_tx.commit()
    await pool.release(slow)
    assert await relay.publish_batch() == 1
    published = [dict(r.headers)["ce_id"].decode() for r in publisher.sent]
    assert published == [late.id, early.id]


async def test_rows_stay_while_the_broker_is_unavailable_and_leave_when_it_returns(
    pool: asyncpg.Pool,
) -> None:
    publisher = InMemoryPublisher(unavailable=True)
    await publisher.start()
    relay = _relay(pool, publisher)
    async with pool.acquire() as conn, conn.transaction():
        for n in range(3):
            await _emit(conn, "t", f"case-{n}")
    with pytest.raises(BrokerUnavailable):
        await relay.publish_batch()
    async with pool.acquire() as conn:
        assert await outbox_backlog(conn) == 3
    publisher.unavailable = False
    assert await relay.publish_batch() == 3
    assert [r.key for r in publisher.sent] == [b"case-0", b"case-1", b"case-2"]  # commit order kept


async def test_running_relay_is_woken_by_notify_and_publishes_in_batches(pool: asyncpg.Pool) -> None:
    publisher = InMemoryPublisher()
    await publisher.start()
    relay = OutboxRelay(pool, publisher, schema=SCHEMA, batch_size=10, poll_interval_s=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.sleep(0.3)
    async with pool.acquire() as conn, conn.transaction():
        for n in range(25):
            await _emit(conn, "t", f"case-{n}")
    async with asyncio.timeout(5):  # far below the 30 s poll: NOTIFY woke it
        while len(publisher.sent) < 25:
            await asyncio.sleep(0.05)
    stop.set()
    await task
    assert relay.published_total == 25


async def test_published_rows_are_purged_after_retention(pool: asyncpg.Pool) -> None:
    publisher = InMemoryPublisher()
    await publisher.start()
    relay = OutboxRelay(pool, publisher, schema=SCHEMA, batch_size=10, poll_interval_s=1, retention_s=0)
    async with pool.acquire() as conn, conn.transaction():
        await _emit(conn, "t", "case-1")
    await relay.publish_batch()
    assert await relay.purge_published() == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


class _SlowFirstBatch(InMemoryPublisher):
    """The first batch takes long: a second relay would overtake it, were it allowed to."""

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        await asyncio.sleep(0.5 if not self.sent else 0.01)
        return await super().send_batch(records)


async def test_two_relays_on_one_table_keep_each_cases_order(pool: asyncpg.Pool) -> None:
    publisher = _SlowFirstBatch()
    await publisher.start()
    emitted: dict[str, list[str]] = {}
    async with pool.acquire() as conn, conn.transaction():
        for n in range(60):
            envelope = await _emit(conn, "t", f"case-{n % 3}")
            emitted.setdefault(f"case-{n % 3}", []).append(envelope.id)
    relays = [_relay(pool, publisher, batch_size=10) for _ in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
    async with asyncio.timeout(20):
        while len(publisher.sent) < 60:
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    published: dict[str, list[str]] = {}
    for record in publisher.sent:
        event_id = dict(record.headers)["ce_id"].decode()
        published.setdefault(record.key.decode(), []).append(event_id)
    assert published == emitted  # each case in emission order, nothing twice
    assert sum(relay.published_total for relay in relays) == 60


async def test_the_relay_survives_its_database_connections_being_killed(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """What a PostgreSQL restart does to a running relay: its pooled and LISTEN connections
    die under it. It must back off and carry on, not end (which would stop the service)."""
    publisher = InMemoryPublisher()
    await publisher.start()
    relay = OutboxRelay(
        pool, publisher, schema=SCHEMA, batch_size=10, poll_interval_s=0.2, backoff_initial_s=0.05
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    async with pool.acquire() as conn, conn.transaction():
        await _emit(conn, "t", "case-before")
    async with asyncio.timeout(10):
        while len(publisher.sent) < 1:
            await asyncio.sleep(0.05)
    killer = await asyncpg.connect(database_url)
    try:
        killed = await killer.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await killer.close()
    assert killed >= 1
    async with asyncio.timeout(20):
        while True:  # the test's own pool lost its connections too: retry like a service would
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await _emit(conn, "t", "case-after")
                break
            except DATABASE_FAILURES:
                await asyncio.sleep(0.1)
        while len(publisher.sent) < 2:
            assert not task.done(), "the relay ended"
            await asyncio.sleep(0.05)
    stop.set()
    await task
    assert [r.key for r in publisher.sent] == [b"case-before", b"case-after"]


async def test_a_topic_new_to_the_producer_does_not_hold_up_rows_for_topics_it_knew_already(
    pool: asyncpg.Pool, hub_settings: HubSettings
) -> None:
    """A partner registered while the hub runs gets a delivery topic the relay's producer has
    never heard of, next to topics it learnt of when it started but never sent to (the other
    partners' delivery topics). The first batch with rows for both must publish every row
    at once, each exactly once: aiokafka used to forget the topics it knew when it first
    looked up a new one, so the rows queued for known topics waited out the relay's 30 s
    timeout and the rows already acknowledged were sent again."""
    known = [f"test.known.{uuid.uuid4().hex[:8]}" for _ in range(2)]
    await ensure_topics(hub_settings, known)
    publisher = KafkaPublisher(hub_settings, client_id="test-new-topic")
    await publisher.start()  # its first metadata names every topic there is
    new = f"test.new.{uuid.uuid4().hex[:8]}"
    await ensure_topics(hub_settings, [new])  # created after the producer started
    async with pool.acquire() as conn, conn.transaction():
        # The order of the registry's rows for a case: deliveries to known partners, then the new one.
        to_known = [await _emit(conn, topic, "case-1") for topic in known]
        to_new = await _emit(conn, new, "case-1")
    try:
        started = asyncio.get_running_loop().time()
        published = await _relay(pool, publisher).publish_batch()
        took = asyncio.get_running_loop().time() - started
    finally:
        await publisher.stop()
    print(f"first batch to two known topics and a new one: {published} rows in {took:.3f}s")
    assert published == 3
    assert took < 10  # a generous bound; the stall was the 30 s timeout
    for topic, envelope in [*zip(known, to_known, strict=True), (new, to_new)]:
        assert event_ids(await read_topic(hub_settings.bootstrap_servers(), topic)) == {envelope.id: 1}


async def test_the_claims_grow_with_a_backlog_up_to_the_batch_size_and_fall_back_once_it_is_worked_off(
    pool: asyncpg.Pool,
) -> None:
    publisher = InMemoryPublisher()
    await publisher.start()
    async with pool.acquire() as conn, conn.transaction():
        for n in range(500):
            await _emit(conn, "hub.test.backlog", f"case-{n}")
    relay = _relay(pool, publisher, batch_size=160)

    claims = []
    while published := await relay.publish_batch():
        claims.append(published)

    # 50 first, doubling while claims come back full, never above the largest batch.
    assert claims == [50, 100, 160, 160, 30]
    assert relay.batch_size == 50  # a claim that came back short: the next starts small again
    assert sum(claims) == 500
    async with pool.acquire() as conn:
        assert await outbox_backlog(conn) == 0
