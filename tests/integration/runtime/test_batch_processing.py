"""A batch of records in one transaction: what a failing record does to its batch-mates,
what a transient failure does to the batch, and how duplicates and outbox rows are handled.
Real PostgreSQL; records built as Kafka delivers them."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.errors import DatabaseUnavailable, PermanentError
from hub.runtime.consumer import BatchResult, MessageProcessor, Outcome, RetryPolicy, Route
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from tests.fixtures.records import consumer_record

pytestmark = pytest.mark.asyncio
GROUP = "hub.test.batch"
OUT = "hub.test.out"


def _record(
    event_id: str, *, partition: int = 0, offset: int, case: str | None = None
) -> ConsumerRecord[bytes, bytes]:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    case_id = case or f"case-{event_id}"
    envelope = Envelope.new(
        data,
        source="urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste",
        business_process_id=case_id,
        event_id=event_id,
    )
    return consumer_record(
        data.model_dump_json().encode(),
        envelope.to_headers(),
        partition=partition,
        offset=offset,
        key=case_id.encode(),
    )


class Handler:
    """Records an effect and emits an event per record; fails as told for chosen event ids."""

    def __init__(self, failures: dict[str, BaseException] | None = None) -> None:
        self.failures = failures or {}
        self.calls: list[str] = []

    async def __call__(self, msg: Incoming[Any], tx: Transaction) -> None:
        self.calls.append(msg.envelope.id)
        await tx.conn.execute("INSERT INTO effects VALUES ($1, $2)", msg.case_id, msg.envelope.id)
        await tx.emit(msg.data, topic=OUT, business_process_id=msg.case_id)
        failure = self.failures.get(msg.envelope.id)
        if failure is not None:
            raise failure


def _processor(pool: asyncpg.Pool, handler: Handler) -> MessageProcessor:
    return MessageProcessor(
        pool,
        Route("hub.ingress", GROUP, {DepartureConfirmed.event_type: handler}),
        DeadLetterWriter(pool),
        source="urn:test",
        retry=RetryPolicy(initial_s=0.01, max_s=0.05, max_unexpected_attempts=3),
    )


async def _rows(pool: asyncpg.Pool, sql: str) -> list[Any]:
    async with pool.acquire() as conn:
        return [tuple(row) if len(row) > 1 else row[0] for row in await conn.fetch(sql)]


async def _attempt(processor: MessageProcessor, records: list[ConsumerRecord[bytes, bytes]]) -> BatchResult:
    return await processor.attempt_batch(records, lambda _record: 1)


async def test_a_batch_commits_every_effect_and_outbox_row_in_record_order(pool: asyncpg.Pool) -> None:
    records = [_record(f"e-{n}", partition=n % 2, offset=10 + n) for n in range(6)]
    handler = Handler()
    result = await _attempt(_processor(pool, handler), records)

    assert result.outcomes == dict.fromkeys(range(6), Outcome.PROCESSED)
    assert result.held == {}
    assert result.finished_through(records) == {("hub.ingress", 0): 15, ("hub.ingress", 1): 16}
    assert await _rows(pool, "SELECT note FROM effects") == [f"e-{n}" for n in range(6)]
    # One insert for the batch's rows, in the order they were emitted: seq follows it.
    assert await _rows(pool, "SELECT aggregateid FROM outbox ORDER BY seq") == [
        f"case-e-{n}" for n in range(6)
    ]
    assert await _rows(pool, "SELECT count(*) FROM inbox WHERE consumer = 'hub.test.batch'") == [6]


async def test_a_record_that_fails_for_good_is_dead_lettered_alone_and_its_batch_mates_commit(
    pool: asyncpg.Pool,
) -> None:
    records = [_record(f"e-{n}", offset=20 + n) for n in range(5)]
    handler = Handler({"e-2": PermanentError("refused")})
    result = await _attempt(_processor(pool, handler), records)

    assert result.outcomes[2] is Outcome.DEAD_LETTERED
    assert [result.outcomes[n] for n in (0, 1, 3, 4)] == [Outcome.PROCESSED] * 4
    assert result.finished_through(records) == {("hub.ingress", 0): 25}
    # Its effect and its outbox row rolled back with its savepoint; the others' stay.
    assert await _rows(pool, "SELECT note FROM effects ORDER BY note") == ["e-0", "e-1", "e-3", "e-4"]
    assert await _rows(pool, "SELECT topic, aggregateid FROM outbox ORDER BY seq") == [
        *[(OUT, f"case-e-{n}") for n in (0, 1, 3, 4)],
        ("hub.ingress-dlt", "case-e-2"),
    ]
    assert await _rows(pool, "SELECT kafka_offset FROM dead_letters") == [22]
    # Not claimed in the inbox: a redrive of the fixed event is processed, not dropped as a repeat.
    assert await _rows(pool, "SELECT event_key FROM inbox WHERE event_key LIKE '% e-2'") == []


async def test_a_transient_failure_rolls_the_whole_batch_back_and_holds_each_partition_at_its_start(
    pool: asyncpg.Pool,
) -> None:
    records = [_record(f"e-{n}", partition=n % 2, offset=30 + n) for n in range(4)]
    handler = Handler({"e-3": DatabaseUnavailable("restarting")})
    result = await _attempt(_processor(pool, handler), records)

    assert result.outcomes == {}
    assert set(result.held) == {("hub.ingress", 0), ("hub.ingress", 1)}
    assert {where: offset for where, (offset, _retry) in result.held.items()} == {
        ("hub.ingress", 0): 30,
        ("hub.ingress", 1): 31,
    }
    assert result.finished_through(records) == {}
    assert await _rows(pool, "SELECT count(*) FROM effects") == [0]
    assert await _rows(pool, "SELECT count(*) FROM outbox") == [0]
    assert await _rows(pool, "SELECT count(*) FROM inbox") == [0]


async def test_an_unexpected_failure_holds_back_its_partition_from_that_record_and_the_rest_commits(
    pool: asyncpg.Pool,
) -> None:
    records = [
        _record("p0-a", partition=0, offset=40),
        _record("p1-a", partition=1, offset=70),
        _record("p0-b", partition=0, offset=41),
        _record("p1-b", partition=1, offset=71),
        _record("p0-c", partition=0, offset=42),
    ]
    handler = Handler({"p0-b": RuntimeError("odd one-off failure")})
    processor = _processor(pool, handler)
    result = await _attempt(processor, records)

    assert result.outcomes == {0: Outcome.PROCESSED, 1: Outcome.PROCESSED, 3: Outcome.PROCESSED}
    assert list(result.held) == [("hub.ingress", 0)]
    assert result.held[("hub.ingress", 0)][0] == 41
    # Partition 0 is committed up to the failing record, partition 1 wholly.
    assert result.finished_through(records) == {("hub.ingress", 0): 41, ("hub.ingress", 1): 72}
    assert sorted(await _rows(pool, "SELECT note FROM effects")) == ["p0-a", "p1-a", "p1-b"]

    # Read again from the held offset, the record now succeeds, and so does the one behind it.
    handler.failures.clear()
    again = await _attempt(processor, records[2::2])
    assert again.outcomes == {0: Outcome.PROCESSED, 1: Outcome.PROCESSED}
    assert sorted(await _rows(pool, "SELECT note FROM effects")) == ["p0-a", "p0-b", "p0-c", "p1-a", "p1-b"]


async def test_copies_of_an_event_in_one_batch_and_across_batches_are_applied_once(
    pool: asyncpg.Pool,
) -> None:
    first, copy = _record("e-1", offset=50), _record("e-1", offset=51)
    handler = Handler()
    processor = _processor(pool, handler)
    result = await _attempt(processor, [first, copy, _record("e-2", offset=52)])
    assert result.outcomes == {0: Outcome.PROCESSED, 1: Outcome.DUPLICATE, 2: Outcome.PROCESSED}

    redelivered = await _attempt(processor, [_record("e-2", offset=52), _record("e-3", offset=53)])
    assert redelivered.outcomes == {0: Outcome.DUPLICATE, 1: Outcome.PROCESSED}
    assert handler.calls.count("e-1") == 1
    assert handler.calls.count("e-2") == 1
    assert await _rows(pool, "SELECT note FROM effects ORDER BY note") == ["e-1", "e-2", "e-3"]


async def test_a_held_back_copy_of_an_event_applied_earlier_keeps_its_inbox_claim(pool: asyncpg.Pool) -> None:
    """A partition held back from a failing record on must release only claims this batch
    made: a copy of an event applied in an earlier batch stays claimed, or it would be
    applied a second time when the partition is read again."""
    handler = Handler()
    processor = _processor(pool, handler)
    await _attempt(processor, [_record("done", offset=60)])

    handler.failures["fails"] = RuntimeError("odd one-off failure")
    result = await _attempt(processor, [_record("fails", offset=61), _record("done", offset=62)])
    assert result.outcomes == {}
    assert result.held[("hub.ingress", 0)][0] == 61

    handler.failures.clear()
    again = await _attempt(processor, [_record("fails", offset=61), _record("done", offset=62)])
    assert again.outcomes == {0: Outcome.PROCESSED, 1: Outcome.DUPLICATE}
    assert handler.calls.count("done") == 1
