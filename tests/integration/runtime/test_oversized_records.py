"""Oversized records in a running service: dead-lettered as references, every other case flows.

A real ServiceRuntime (FastStream subscriber, outbox relay, embedded broker, PostgreSQL)
reads a partner ingress topic. Between valid events arrive a record with a 2 MB value and
one with a 2 MB header: each is dead-lettered as a reference (its first bytes, size,
SHA-256, headers cut short), stored and published, and the events after them are
processed and published as if nothing happened. One handler call writes an event the
broker cannot take (2 MB): it is parked, the next event of its case waits behind it, and
/metrics says so. The service is named like the registry so that ``hub dlq`` finds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer, ConsumerRecord

from contracts import KRIENS, DepartureConfirmed, Envelope, header_value
from hub.cli import main as cli
from hub.runtime.consumer import Route
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction, write_event
from hub.runtime.service import ServiceContext, ServiceDefinition, ServiceRuntime
from hub.runtime.settings import HubSettings
from tests.fixtures.topics import create_topic, event_ids, read_topic

pytestmark = pytest.mark.asyncio
SERVICE = "registry"
SOURCE = "urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste"
TWO_MB = 2 * 1024 * 1024
BIG_OUT = "case-3"  # its first event makes the handler write an event of 2 MB


@dataclass(frozen=True)
class Sent:
    case_id: str
    event_id: str
    value: bytes
    headers: list[tuple[str, bytes]]


def _event(case_id: str, *, extra_headers: list[tuple[str, bytes]] | None = None, padding: int = 0) -> Sent:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    envelope = Envelope.new(data, source=SOURCE, business_process_id=case_id)
    value = data.model_dump_json().encode() + b" " * padding  # JSON whitespace: still the same event
    return Sent(case_id, envelope.id, value, [*envelope.to_headers(), *(extra_headers or [])])


@dataclass
class Service:
    runtime: ServiceRuntime
    ingress: str
    out: str


@pytest_asyncio.fixture
async def service(hub_settings: HubSettings) -> AsyncIterator[Service]:
    """The running service: every valid event is recorded and answered on ``out``."""
    suffix = uuid.uuid4().hex[:8]
    ingress, out = f"hub.ingress.test.oversized.{suffix}", f"test.oversized.out.{suffix}"
    answered: set[str] = set()

    async def handler(msg: Incoming[Any], tx: Transaction) -> None:
        await tx.conn.execute(
            "INSERT INTO effects (partition, event_id) VALUES ($1, $2)", msg.partition, msg.envelope.id
        )
        if msg.case_id == BIG_OUT and BIG_OUT not in answered:
            answered.add(BIG_OUT)
            envelope = Envelope.new(msg.data, source="urn:test", business_process_id=msg.case_id)
            payload = b"{}" + b" " * TWO_MB
            await write_event(tx.conn, topic=out, key=msg.case_id, envelope=envelope, payload=payload)
            return
        await tx.emit(msg.data, topic=out, business_process_id=msg.case_id)

    def routes(_ctx: ServiceContext) -> list[Route]:
        return [Route(ingress, f"hub.test.oversized.{suffix}", {DepartureConfirmed.event_type: handler})]

    definition = ServiceDefinition(
        name=SERVICE,
        migrations_package="tests.integration.runtime.backoff_migrations",
        topics=(ingress, out),
        routes=routes,
    )
    # A cluster whose ingress topic takes 2 MB (Apache Kafka would refuse such records at the
    # hub's own limit, test_ingress_topic_limit.py; Tansu takes them anyway): the hub's check
    # on reading is what this test is about.
    await create_topic(hub_settings.bootstrap_servers(), ingress, {"max.message.bytes": str(4 * TWO_MB)})
    runtime = ServiceRuntime(definition, hub_settings)
    await runtime.start()
    try:
        yield Service(runtime, ingress, out)
    finally:
        await runtime.stop()


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, hub_settings: HubSettings, tmp_path: Path) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", hub_settings.database_dsn())
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP_SERVERS", hub_settings.bootstrap_servers())
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))


async def _wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.1)


async def _publish(settings: HubSettings, topic: str, events: list[Sent]) -> None:
    """As a partner's producer that allows records of 2 MB and more (the broker here takes them)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers(), acks="all", max_request_size=4 * TWO_MB
    )
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                topic, event.value, key=event.case_id.encode(), headers=event.headers, partition=0
            )
    finally:
        await producer.stop()


Record = ConsumerRecord[bytes, bytes]


def _dead_letter_of(letters: list[Record], event_id: str) -> Record:
    [letter] = [r for r in letters if header_value(r.headers, "ce_id") == event_id]
    return letter


async def test_oversized_records_are_dead_lettered_as_references_and_the_other_cases_flow_on(
    service: Service, hub_settings: HubSettings, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = service.runtime
    assert runtime.pool is not None
    pool = runtime.pool
    huge_value = _event("case-poison-value", padding=TWO_MB)
    huge_header = _event("case-poison-header", extra_headers=[("x-partner-note", b"n" * TWO_MB)])
    valid = [_event("case-1"), _event("case-2"), _event(BIG_OUT), _event(BIG_OUT), _event("case-5")]
    await _publish(hub_settings, service.ingress, [valid[0], huge_value, huge_header, *valid[1:]])

    async def settled() -> bool:
        async with pool.acquire() as conn:
            return (
                await conn.fetchval("SELECT count(*) FROM effects"),
                await conn.fetchval("SELECT count(*) FROM dead_letters"),
                await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
                ),
                await conn.fetchval("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL"),
            ) == (5, 2, 1, 1)

    await _wait_for(settled)
    metrics = (await runtime.metrics()).splitlines()
    async with pool.acquire() as conn:
        rows = {row["event_id"]: dict(row) for row in await conn.fetch("SELECT * FROM dead_letters")}
    letters = [
        r
        for r in await read_topic(hub_settings.bootstrap_servers(), "hub.ingress-dlt")
        if header_value(r.headers, "dlt-original-topic") == service.ingress
    ]

    # Stored: the first KiB of a value, size and hash of the whole; every header cut short.
    value_row = rows[huge_value.event_id]
    assert value_row["error_class"] == "MessageTooLarge"
    assert value_row["truncated"] is True
    assert value_row["payload"] == huge_value.value[:1024]
    assert value_row["original_size"] == len(huge_value.value)
    assert value_row["original_sha256"] == hashlib.sha256(huge_value.value).hexdigest()
    header_row = rows[huge_header.event_id]
    assert header_row["truncated"] is True
    assert header_row["payload"] == huge_header.value  # small: kept as it is
    stored_headers = dict(json.loads(header_row["headers"]))
    assert stored_headers["x-partner-note"] == "n" * 512
    assert stored_headers["ce_id"] == huge_header.event_id

    # Published on the dead-letter topic: the same reference, and headers that say it is one.
    assert len(letters) == 2
    by_value = _dead_letter_of(letters, huge_value.event_id)
    assert by_value.value == huge_value.value[:1024]
    assert header_value(by_value.headers, "dlt-value-truncated") == "true"
    assert header_value(by_value.headers, "dlt-headers-truncated") == "false"
    assert header_value(by_value.headers, "dlt-original-size") == str(len(huge_value.value))
    assert header_value(by_value.headers, "dlt-original-sha256") == value_row["original_sha256"]
    assert header_value(by_value.headers, "dlt-exception-fqcn") == "hub.errors.MessageTooLarge"
    by_header = _dead_letter_of(letters, huge_header.event_id)
    assert by_header.value == huge_header.value
    assert header_value(by_header.headers, "dlt-value-truncated") == "false"
    assert header_value(by_header.headers, "dlt-headers-truncated") == "true"
    assert header_value(by_header.headers, "x-partner-note") == "n" * 512
    assert int(header_value(by_header.headers, "dlt-original-record-size") or 0) > TWO_MB
    assert max(len(r.value or b"") + sum(len(v) for _, v in r.headers) for r in letters) < 64 * 1024

    # The flow went on: every valid event was answered exactly once, but the one the broker
    # cannot take (parked) and the next of its case, which waits behind it.
    answered = event_ids(await read_topic(hub_settings.bootstrap_servers(), service.out))
    assert len(answered) == 3
    assert set(answered.values()) == {1}
    assert f'hub_dead_letters_stored{{service="{SERVICE}"}} 2.0' in metrics
    assert f'hub_outbox_parked{{service="{SERVICE}"}} 1.0' in metrics
    assert f'hub_outbox_backlog{{service="{SERVICE}"}} 1.0' in metrics
    group = runtime.processors[0].route.group_id
    counter = f'hub_consumer_records_total{{group="{group}"'
    assert f'{counter},outcome="dead-lettered",service="{SERVICE}"}} 2.0' in metrics
    assert f'{counter},outcome="processed",service="{SERVICE}"}} 5.0' in metrics
    dead = f'hub_dead_letters_total{{reason="MessageTooLarge",service="{SERVICE}",topic="{service.ingress}"}}'
    assert f"{dead} 2.0" in metrics

    # An operator sees what was kept, and cannot redrive a reference.
    dead_id = str(value_row["id"])
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, ["dlq", "show", dead_id, "--service", SERVICE]) == 0
    shown = capsys.readouterr().out
    assert "only a reference was kept" in shown
    assert f"{len(huge_value.value)} bytes, sha256 {value_row['original_sha256']}" in shown
    assert await asyncio.to_thread(cli.main, ["dlq", "redrive", "--id", dead_id, "--service", SERVICE]) == 0
    redrive = capsys.readouterr().out
    assert f"skipped {SERVICE} {dead_id}: only a reference was kept" in redrive
    assert "cannot be redriven" in redrive
    assert redrive.splitlines()[-1] == "0 redriven, 1 skipped"
