"""Entrypoint translation: one record -> handler in a transaction -> processed,
duplicate, retried or dead-lettered. Real PostgreSQL; records built as Kafka delivers them."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.errors import DatabaseUnavailable
from hub.runtime.consumer import MessageProcessor, Outcome, RetryPolicy, Route
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from tests.fixtures.records import consumer_record

pytestmark = pytest.mark.asyncio
GROUP = "hub.test.group"


def _valid(event_id: str = "e-1") -> ConsumerRecord[bytes, bytes]:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    envelope = Envelope.new(
        data,
        source="urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste",
        business_process_id="case-1",
        event_id=event_id,
    )
    return consumer_record(data.model_dump_json().encode(), envelope.to_headers())


async def _record_effect(msg: Incoming[Any], tx: Transaction) -> None:
    await tx.conn.execute("INSERT INTO effects VALUES ($1, $2)", msg.case_id, msg.envelope.id)


def _processor(pool: asyncpg.Pool, handler: Any = _record_effect) -> MessageProcessor:
    route = Route("hub.ingress", GROUP, {DepartureConfirmed.event_type: handler})
    return MessageProcessor(
        pool,
        route,
        DeadLetterWriter(pool),
        source="urn:test",
        retry=RetryPolicy(initial_s=0.01, max_s=0.05, max_unexpected_attempts=3),
    )


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql))


async def test_valid_event_runs_its_handler_once(pool: asyncpg.Pool) -> None:
    processor = _processor(pool)
    assert await processor.process(_valid()) is Outcome.PROCESSED
    assert await processor.process(_valid()) is Outcome.DUPLICATE
    assert await _count(pool, "SELECT count(*) FROM effects") == 1


async def test_transient_failure_is_retried_until_it_succeeds(pool: asyncpg.Pool) -> None:
    calls = {"n": 0}

    async def flaky(msg: Incoming[Any], tx: Transaction) -> None:
        calls["n"] += 1
        await _record_effect(msg, tx)
        if calls["n"] < 3:
            raise DatabaseUnavailable("connection reset")

    assert await _processor(pool, flaky).process(_valid()) is Outcome.PROCESSED
    assert calls["n"] == 3
    assert await _count(pool, "SELECT count(*) FROM effects") == 1  # the failed attempts rolled back


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"not json", None, "ContractViolation"),
        (b"{}", [("ce_id", b"x")], "EnvelopeError"),
        (b'{"municipality": {}, "confirmed_on": "2026-12-01"}', None, "ContractViolation"),
    ],
    ids=["not-json", "missing-ce-headers", "contract-violation"],
)
async def test_bad_input_is_dead_lettered_with_its_reason(
    pool: asyncpg.Pool, value: bytes, headers: list[tuple[str, bytes]] | None, reason: str
) -> None:
    record = consumer_record(value, headers if headers is not None else _valid().headers)
    assert await _processor(pool).process(record) is Outcome.DEAD_LETTERED
    async with pool.acquire() as conn:
        dead = await conn.fetchrow("SELECT * FROM dead_letters")
        outbox = await conn.fetchrow("SELECT topic, headers, payload FROM outbox")
    assert dead["error_class"] == reason
    assert dead["kafka_offset"] == 7
    assert outbox["topic"] == "hub.ingress-dlt"
    assert bytes(outbox["payload"]) == value  # the original bytes, for inspection and redrive
    assert dict(json.loads(outbox["headers"]))["dlt-original-consumer-group"] == GROUP
    assert await _count(pool, "SELECT count(*) FROM effects") == 0


async def test_unexpected_errors_are_dead_lettered_after_the_retry_budget(pool: asyncpg.Pool) -> None:
    async def broken(msg: Incoming[Any], tx: Transaction) -> None:
        raise ZeroDivisionError("bug")

    assert await _processor(pool, broken).process(_valid()) is Outcome.DEAD_LETTERED
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT error_class FROM dead_letters") == "ZeroDivisionError"


async def test_a_long_outage_does_not_use_up_the_budget_for_unexpected_failures(pool: asyncpg.Pool) -> None:
    """Ten transient failures (a database restart), then one odd error, then success: the
    record is processed, not dead-lettered, although it took more attempts than the budget."""
    calls = {"n": 0}

    async def outage_then_hiccup(msg: Incoming[Any], tx: Transaction) -> None:
        calls["n"] += 1
        if calls["n"] <= 10:
            raise DatabaseUnavailable("database restarting")
        if calls["n"] == 11:
            raise RuntimeError("odd one-off failure")
        await _record_effect(msg, tx)

    assert await _processor(pool, outage_then_hiccup).process(_valid()) is Outcome.PROCESSED
    assert calls["n"] == 12
    assert await _count(pool, "SELECT count(*) FROM dead_letters") == 0


async def test_event_type_without_handler_is_dead_lettered(pool: asyncpg.Pool) -> None:
    route = Route("hub.ingress", GROUP, {})
    processor = MessageProcessor(pool, route, DeadLetterWriter(pool), source="urn:test", retry=RetryPolicy())
    assert await processor.process(_valid()) is Outcome.DEAD_LETTERED


async def test_shared_topic_route_skips_types_meant_for_other_services(pool: asyncpg.Pool) -> None:
    route = Route("hub.admin", GROUP, {}, ignore_unknown_types=True)
    processor = MessageProcessor(pool, route, DeadLetterWriter(pool), source="urn:test", retry=RetryPolicy())
    assert await processor.process(_valid()) is Outcome.SKIPPED
    assert await _count(pool, "SELECT count(*) FROM dead_letters") == 0


async def test_a_record_over_the_size_limit_is_dead_lettered_unread(pool: asyncpg.Pool) -> None:
    route = Route("hub.ingress", GROUP, {DepartureConfirmed.event_type: _record_effect})
    processor = MessageProcessor(
        pool, route, DeadLetterWriter(pool), source="urn:test", retry=RetryPolicy(), max_message_bytes=2048
    )
    valid = _valid("small")
    padded = json.dumps({**json.loads(valid.value or b"{}"), "padding": "x" * 4096}).encode()
    assert await processor.process(consumer_record(padded, valid.headers, offset=8)) is Outcome.DEAD_LETTERED
    assert await processor.process(valid) is Outcome.PROCESSED
    async with pool.acquire() as conn:
        dead = await conn.fetchrow("SELECT error_class, error_message, kafka_offset FROM dead_letters")
    assert dead["error_class"] == "MessageTooLarge"
    assert "exceeds the limit of 2048" in dead["error_message"]
    assert dead["kafka_offset"] == 8
    assert await _count(pool, "SELECT count(*) FROM effects") == 1
