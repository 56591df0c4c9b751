"""One outbox row the broker cannot take is parked; every other case keeps flowing.

Against real PostgreSQL and the embedded broker, in a schema named like a service so that
the ``hub outbox`` commands (run through ``hub.cli.main.main``, as an operator would) find it.
Two tests use the fake publisher where the broker here cannot play the part: a batch
refused whole (Apache Kafka's ``max.message.bytes``; Tansu stores that setting but does not
enforce it) and a topic whose partitions are not known yet (Tansu creates any topic it is
asked about).
"""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import ConsumerRecord

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.cli import main as cli
from hub.runtime.db import create_pool
from hub.runtime.kafka import ensure_topics
from hub.runtime.migrations import apply_migrations, load_migrations
from hub.runtime.outbox import OutboxRelay, Transaction, outbox_backlog, write_event
from hub.runtime.publisher import InMemoryPublisher, KafkaPublisher, Publisher
from hub.runtime.settings import HubSettings
from tests.fixtures.topics import create_topic, event_ids, read_topic

pytestmark = pytest.mark.asyncio
SERVICE = "registry"  # a schema the hub commands know; this test's database has nothing else
SOURCE = "urn:ch:lu:hub:service:test"
TWO_MB = 2 * 1024 * 1024


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, SERVICE, size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn, load_migrations("hub-runtime", "hub.runtime.sql"))
    yield pool
    await pool.close()


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, hub_settings: HubSettings, tmp_path: Path) -> None:
    """The CLI finds the test database through the same HUB_* settings as in production."""
    monkeypatch.setenv("HUB_DATABASE_URL", hub_settings.database_dsn())
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP_SERVERS", hub_settings.bootstrap_servers())
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))


async def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``hub ARGV`` in a thread of its own (it calls asyncio.run): exit code, stdout, stderr."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _hub_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = await _hub(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _relay(pool: asyncpg.Pool, publisher: Publisher) -> OutboxRelay:
    return OutboxRelay(
        pool, publisher, schema=SERVICE, batch_size=100, poll_interval_s=0.2, backoff_initial_s=0.2
    )


async def _emit(conn: asyncpg.Connection, topic: str, case_id: str, *, padding: int = 0) -> tuple[str, int]:
    """An event of ``case_id`` on ``topic`` written as a handler writes it; ``padding`` bytes
    more in its value. Its ce_id and its row's seq."""
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    if not padding:
        envelope = await Transaction(conn, source=SOURCE).emit(data, topic=topic, business_process_id=case_id)
    else:
        envelope = Envelope.new(data, source=SOURCE, business_process_id=case_id)
        value = json.dumps({**json.loads(data.model_dump_json()), "padding": "x" * padding}).encode()
        await write_event(conn, topic=topic, key=case_id, envelope=envelope, payload=value)
    seq = await conn.fetchval("SELECT seq FROM outbox WHERE id = $1", uuid.UUID(envelope.id))
    return envelope.id, int(seq)


async def _row(pool: asyncpg.Pool, seq: int) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT published_at, parked_at, park_reason, attempts, retry_at, last_error FROM outbox"
            " WHERE seq = $1",
            seq,
        )
    assert row is not None
    return row


def _case_order(records: list[ConsumerRecord[bytes, bytes]], case_id: str) -> list[str]:
    ours = sorted((r for r in records if r.key == case_id.encode()), key=lambda r: r.offset)
    return [dict(r.headers)["ce_id"].decode() for r in ours]


async def test_a_row_the_broker_cannot_take_is_parked_and_every_other_case_goes_out_once(
    pool: asyncpg.Pool, hub_settings: HubSettings, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = f"test.parking.{uuid.uuid4().hex[:8]}"
    await ensure_topics(hub_settings, [topic])
    async with pool.acquire() as conn, conn.transaction():
        before, _ = await _emit(conn, topic, "case-a")
        big, big_seq = await _emit(conn, topic, "case-big", padding=TWO_MB)  # over max_request_size
        beside, _ = await _emit(conn, topic, "case-b")
        behind, behind_seq = await _emit(conn, topic, "case-big")  # a later event of the same case
        after, _ = await _emit(conn, topic, "case-c")
    publisher = KafkaPublisher(hub_settings, client_id="test-parking")
    await publisher.start()
    try:
        relay = _relay(pool, publisher)
        assert await relay.publish_batch() == 3
        assert await relay.publish_batch() == 0  # the later event of case-big waits behind it

        parked = await _row(pool, big_seq)
        assert parked["parked_at"] is not None
        assert parked["published_at"] is None
        assert "MessageSizeTooLargeError" in parked["park_reason"]
        assert parked["attempts"] == 1
        waiting = await _row(pool, behind_seq)
        assert (waiting["published_at"], waiting["parked_at"], waiting["attempts"]) == (None, None, 0)
        first_pass = await read_topic(hub_settings.bootstrap_servers(), topic)
        assert event_ids(first_pass) == {before: 1, beside: 1, after: 1}

        status = {row["service"]: row for row in await _hub_json(capsys, "outbox", "status")}[SERVICE]
        assert (status["backlog"], status["parked"], status["retrying"]) == (1, 1, 0)
        [reason] = status["park_reasons"]
        assert reason["count"] == 1
        assert "MessageSizeTooLargeError" in reason["reason"]
        [listed] = await _hub_json(capsys, "outbox", "parked")
        assert (listed["service"], listed["seq"], listed["event_id"]) == (SERVICE, big_seq, big)
        assert (listed["key"], listed["waiting_behind"]) == ("case-big", 1)
        assert listed["payload_bytes"] > TWO_MB

        code, out, _ = await _hub(
            capsys, "outbox", "drop", str(big_seq), "--service", SERVICE, "--reason", "partner sends it again"
        )
        assert code == 0, out
        assert await relay.publish_batch() == 1  # what waited behind it goes out now
    finally:
        await publisher.stop()

    published = await read_topic(hub_settings.bootstrap_servers(), topic)
    assert event_ids(published) == {before: 1, beside: 1, behind: 1, after: 1}
    [dropped] = await _hub_json(capsys, "outbox", "dropped")
    assert (dropped["seq"], dropped["event_id"], dropped["reason"]) == (
        big_seq,
        big,
        "partner sends it again",
    )
    assert "MessageSizeTooLargeError" in dropped["park_reason"]
    assert "payload" not in dropped
    assert dropped["payload_bytes"] > TWO_MB
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE seq = $1", big_seq) == 0
        assert await outbox_backlog(conn) == 0
    code, _, err = await _hub(
        capsys, "outbox", "drop", str(big_seq), "--service", SERVICE, "--reason", "again"
    )
    assert (code, err) == (1, f"hub: error: no parked row {big_seq} in {SERVICE}'s outbox\n")


async def test_a_parked_row_retried_once_its_cause_is_fixed_goes_out_before_the_rows_behind_it(
    pool: asyncpg.Pool, hub_settings: HubSettings, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = f"test.parking.{uuid.uuid4().hex[:8]}"
    # A topic that takes records of 2 MB (Kafka's default is 1 MB): the cause is the producer's limit.
    await create_topic(hub_settings.bootstrap_servers(), topic, {"max.message.bytes": str(2 * TWO_MB)})
    async with pool.acquire() as conn, conn.transaction():
        big, big_seq = await _emit(conn, topic, "case-big", padding=TWO_MB)
        behind, _ = await _emit(conn, topic, "case-big")
        other, _ = await _emit(conn, topic, "case-other")
    small = KafkaPublisher(hub_settings, client_id="test-parking-small")
    await small.start()
    try:
        assert await _relay(pool, small).publish_batch() == 1
    finally:
        await small.stop()
    assert (await _row(pool, big_seq))["parked_at"] is not None

    # The operator raises the producer's limit (the brokers take it), restarts, and retries the row.
    code, out, _ = await _hub(capsys, "outbox", "retry", str(big_seq), "--service", SERVICE)
    assert (code, out) == (0, f"{SERVICE} {big_seq} un-parked: the relay sends it again now\n")
    larger = hub_settings.model_copy(update={"kafka_max_request_bytes": 2 * TWO_MB})
    publisher = KafkaPublisher(larger, client_id="test-parking-larger")
    await publisher.start()
    try:
        assert await _relay(pool, publisher).publish_batch() == 2
    finally:
        await publisher.stop()

    published = await read_topic(hub_settings.bootstrap_servers(), topic)
    assert event_ids(published) == {big: 1, behind: 1, other: 1}
    assert _case_order(published, "case-big") == [big, behind]
    retried = await _row(pool, big_seq)
    assert (retried["parked_at"], retried["attempts"]) == (None, 1)  # the failed attempt stays counted
    assert retried["published_at"] is not None
    code, _, err = await _hub(capsys, "outbox", "retry", str(big_seq), "--service", SERVICE)
    assert (code, err) == (1, f"hub: error: no parked row {big_seq} in {SERVICE}'s outbox\n")


async def test_a_batch_the_broker_refuses_whole_parks_only_the_record_that_caused_it(
    pool: asyncpg.Pool,
) -> None:
    # Apache Kafka refuses a partition's whole record batch when one record is over the topic's
    # max.message.bytes; here every record of the topic in that batch.
    publisher = InMemoryPublisher(max_message_bytes=10_000)
    await publisher.start()
    async with pool.acquire() as conn, conn.transaction():
        before, _ = await _emit(conn, "t", "case-a")
        _big, big_seq = await _emit(conn, "t", "case-big", padding=20_000)
        beside, _ = await _emit(conn, "t", "case-b")
        _behind, behind_seq = await _emit(conn, "t", "case-big")
        elsewhere, _ = await _emit(conn, "t.other", "case-c")
    relay = _relay(pool, publisher)

    assert await relay.publish_batch() == 3
    sent = collections.Counter(dict(r.headers)["ce_id"].decode() for r in publisher.sent)
    assert sent == {before: 1, beside: 1, elsewhere: 1}
    # One batch, then each record the broker refused with it on its own.
    assert publisher.calls == 1 + 3
    parked = await _row(pool, big_seq)
    assert parked["parked_at"] is not None
    assert "max.message.bytes" in parked["park_reason"]
    assert (await _row(pool, behind_seq))["published_at"] is None


async def test_a_row_that_fails_for_now_holds_up_only_its_case_until_its_retry_time(
    pool: asyncpg.Pool,
) -> None:
    # A topic whose partitions the producer does not know yet (a partner's topic still being
    # created): its rows are retried later, each case stays in order, the others go on.
    publisher = InMemoryPublisher(unknown_topics={"t.new"})
    await publisher.start()
    async with pool.acquire() as conn, conn.transaction():
        first, first_seq = await _emit(conn, "t.new", "case-x")
        other_1, _ = await _emit(conn, "t", "case-y")
        second, second_seq = await _emit(conn, "t.new", "case-x")
        other_2, _ = await _emit(conn, "t", "case-y")
    relay = _relay(pool, publisher)

    assert await relay.publish_batch() == 2
    assert [dict(r.headers)["ce_id"].decode() for r in publisher.sent] == [other_1, other_2]
    failed = await _row(pool, first_seq)
    assert (failed["attempts"], failed["parked_at"], failed["published_at"]) == (1, None, None)
    assert failed["retry_at"] is not None
    assert "no partitions of t.new" in failed["last_error"]
    assert (await _row(pool, second_seq))["attempts"] == 0  # never sent ahead of the first
    assert await relay.publish_batch() == 0  # both wait for the first one's retry time

    publisher.unknown_topics.clear()
    async with asyncio.timeout(10):
        while not await relay.publish_batch():
            await asyncio.sleep(0.05)
    assert [dict(r.headers)["ce_id"].decode() for r in publisher.sent] == [other_1, other_2, first, second]
    async with pool.acquire() as conn:
        assert await outbox_backlog(conn) == 0
