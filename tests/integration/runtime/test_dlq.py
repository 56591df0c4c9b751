"""``hub dlq`` and ``hub outbox status`` against real PostgreSQL and a real broker.

Dead letters are produced the way services produce them (a MessageProcessor whose
handler or validation fails), in schemas named like the services, and the commands run
through the argparse CLI (``hub.cli.main.main``) in a thread, as an operator would run them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.cli import dead_letters as dlq
from hub.cli import main as cli
from hub.errors import UnknownCase
from hub.runtime.consumer import MessageProcessor, Outcome, RetryPolicy, Route
from hub.runtime.db import create_pool
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.kafka import ensure_topics
from hub.runtime.messages import Incoming
from hub.runtime.migrations import apply_migrations, load_migrations
from hub.runtime.outbox import OutboxRelay, Transaction
from hub.runtime.publisher import InMemoryPublisher, KafkaPublisher
from hub.runtime.settings import HubSettings
from hub.security.operator_keys import trusted_operator_keys
from hub.security.redrive_attestation import HEADER as REDRIVE_HEADER
from hub.security.redrive_attestation import attested_redrive
from tests.fixtures.records import consumer_record

pytestmark = pytest.mark.asyncio
GROUP = "hub.registry.test"
SOURCE = "urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

PoolFactory = Callable[[str], Awaitable[asyncpg.Pool]]


@pytest_asyncio.fixture
async def service_pool(database_url: str) -> AsyncIterator[PoolFactory]:
    """Pools on schemas named like the services, migrated as a service migrates them."""
    pools: dict[str, asyncpg.Pool] = {}

    async def open_pool(service: str) -> asyncpg.Pool:
        pool = await create_pool(database_url, service, size=3)
        async with pool.acquire() as conn:
            await apply_migrations(conn, load_migrations("hub-runtime", "hub.runtime.sql"))
            await conn.execute("CREATE TABLE IF NOT EXISTS effects (event_id text, case_id text)")
        pools[service] = pool
        return pool

    yield open_pool
    for pool in pools.values():
        await pool.close()


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, hub_settings: HubSettings, tmp_path: Path) -> None:
    """The CLI finds the test database and broker through the same HUB_* settings as in production."""
    assert hub_settings.database_url is not None
    monkeypatch.setenv("HUB_DATABASE_URL", hub_settings.database_url.get_secret_value())
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP_SERVERS", hub_settings.bootstrap_servers())
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))


async def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``hub ARGV`` (it calls asyncio.run, so in a thread of its own); exit code, stdout, stderr."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _hub_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = await _hub(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _record(
    topic: str,
    *,
    event_id: str | None = None,
    value: bytes | None = None,
    extra_headers: list[tuple[str, bytes]] | None = None,
    offset: int = 7,
) -> ConsumerRecord[bytes, bytes]:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    envelope = Envelope.new(
        data, source=SOURCE, business_process_id="case-1", event_id=event_id or str(uuid.uuid4())
    )
    body = value if value is not None else data.model_dump_json().encode()
    headers = [*envelope.to_headers(), ("traceparent", TRACEPARENT.encode()), *(extra_headers or [])]
    return consumer_record(body, headers, topic=topic, partition=1, offset=offset)


async def _record_effect(msg: Incoming[Any], tx: Transaction) -> None:
    await tx.conn.execute("INSERT INTO effects VALUES ($1, $2)", msg.envelope.id, msg.case_id)


async def _unknown_case(msg: Incoming[Any], tx: Transaction) -> None:
    raise UnknownCase(f"no case {msg.case_id} (yet)")


def _processor(pool: asyncpg.Pool, topic: str, handler: Any = _record_effect) -> MessageProcessor:
    route = Route(topic, GROUP, {DepartureConfirmed.event_type: handler})
    return MessageProcessor(pool, route, DeadLetterWriter(pool), source="urn:test", retry=RetryPolicy())


async def _dead_letter(pool: asyncpg.Pool, record: ConsumerRecord[bytes, bytes]) -> int:
    """Dead-letter ``record`` (its case is unknown, or it is invalid); the new dead letter's id."""
    assert await _processor(pool, record.topic, _unknown_case).process(record) is Outcome.DEAD_LETTERED
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT max(id) FROM dead_letters"))


async def _consume(settings: HubSettings, topic: str, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        group_id=f"test-{uuid.uuid4()}",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(20):
            while len(records) < count:
                for part in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(part)
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: r.offset)


async def test_a_dead_letter_keeps_the_original_record_for_show(
    service_pool: PoolFactory, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = await service_pool("registry")
    record = _record(
        "hub.ingress", event_id="evt-show", extra_headers=[("x-partner-note", b"bitte pr\xc3\xbcfen")]
    )
    dead_id = await _dead_letter(pool, record)
    binary = _record("hub.ingress", event_id="evt-binary", value=b"\xff\xfe not json", offset=8)
    binary_id = await _dead_letter(pool, binary)

    shown = await _hub_json(capsys, "dlq", "show", str(dead_id), "--service", "registry")
    assert shown["event_id"] == "evt-show"
    assert shown["error_class"] == "UnknownCase"
    assert shown["consumer_group"] == GROUP
    assert (shown["topic"], shown["partition"], shown["offset"]) == ("hub.ingress", 1, 7)
    assert shown["key"] == {"encoding": "utf-8", "text": "case-1"}
    assert shown["payload"] == {"encoding": "utf-8", "text": (record.value or b"").decode()}
    assert shown["headers"] == [[name, value.decode()] for name, value in record.headers]
    assert shown["state"] == "open"

    code, out, _ = await _hub(capsys, "dlq", "show", str(binary_id), "--service", "registry")
    assert code == 0
    assert "ContractViolation" in out
    assert "(not UTF-8, base64) //4gbm90IGpzb24=" in out
    assert "x-partner-note" not in out  # the other record's headers
    assert "ce_id: evt-binary" in out

    code, _, err = await _hub(capsys, "dlq", "show", "999", "--service", "registry")
    assert code == 1
    assert err == "hub: error: no dead letter 999 in registry\n"


async def test_nul_characters_do_not_stop_dead_lettering(service_pool: PoolFactory) -> None:
    """PostgreSQL text and jsonb refuse NUL; such a poison record must still be recorded."""
    pool = await service_pool("registry")
    record = _record("hub.ingress", extra_headers=[("x-poison", b"a\x00b")])
    record = dataclasses.replace(
        record,
        key=b"case\x00-1",
        headers=[(n, b"ch.lu.hub.x\x00.v1" if n == "ce_type" else v) for n, v in record.headers],
    )
    dead_id = await _dead_letter(pool, record)
    async with pool.acquire() as conn:
        content = await dlq.show_dead_letter(conn, "registry", dead_id)
        dlt_key = await conn.fetchval("SELECT aggregateid FROM outbox WHERE aggregatetype = 'dead-letter'")
    assert content is not None
    assert content.headers is not None
    assert ("x-poison", "a\ufffdb") in content.headers
    assert content.summary.event_type == "ch.lu.hub.x\ufffd.v1"
    assert content.key == b"case\x00-1"  # bytea keeps the original bytes
    assert dlt_key == "case\ufffd-1"


async def test_list_filters_by_service_topic_type_time_and_reason(
    service_pool: PoolFactory, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = await service_pool("registry")
    identity = await service_pool("identity")
    unknown_case = await _dead_letter(registry, _record("hub.ingress"))
    not_json = await _dead_letter(registry, _record("hub.admin", value=b"not json"))
    no_handler = _record("hub.identity.requests")
    processor = MessageProcessor(
        identity,
        Route(no_handler.topic, "hub.identity.test", {}),
        DeadLetterWriter(identity),
        source="urn:t",
        retry=RetryPolicy(),
    )
    assert await processor.process(no_handler) is Outcome.DEAD_LETTERED
    async with registry.acquire() as conn:  # the first one is a day old
        await conn.execute(
            "UPDATE dead_letters SET recorded_at = now() - interval '1 day' WHERE id = $1", unknown_case
        )

    def ids(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [(row["service"], row["id"]) for row in rows]

    everything = await _hub_json(capsys, "dlq", "list")
    assert ids(everything) == [
        ("identity", 1),
        ("registry", not_json),
        ("registry", unknown_case),
    ]  # newest first
    assert everything[0]["error_class"] == "UnroutableEvent"
    assert everything[0]["consumer_group"] == "hub.identity.test"
    assert everything[0]["event_type"] == DepartureConfirmed.event_type

    assert ids(await _hub_json(capsys, "dlq", "list", "--service", "identity")) == [("identity", 1)]
    assert ids(await _hub_json(capsys, "dlq", "list", "--topic", "hub.admin")) == [("registry", not_json)]
    assert await _hub_json(capsys, "dlq", "list", "--type", "ch.lu.hub.other.v1") == []
    assert len(await _hub_json(capsys, "dlq", "list", "--type", DepartureConfirmed.event_type)) == 3
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    recent = await _hub_json(capsys, "dlq", "list", "--since", an_hour_ago)
    assert ids(recent) == [("identity", 1), ("registry", not_json)]
    assert ids(await _hub_json(capsys, "dlq", "list", "--until", an_hour_ago)) == [("registry", unknown_case)]
    assert ids(await _hub_json(capsys, "dlq", "list", "--reason", "no case CASE-1")) == [
        ("registry", unknown_case)
    ]
    assert ids(await _hub_json(capsys, "dlq", "list", "--reason", "contractviolation")) == [
        ("registry", not_json)
    ]
    assert await _hub_json(capsys, "dlq", "list", "--reason", "%") == []  # a wildcard is taken literally
    narrowed = await _hub_json(capsys, "dlq", "list", "--service", "registry", "--since", an_hour_ago)
    assert ids(narrowed) == [("registry", not_json)]

    code, out, _ = await _hub(capsys, "dlq", "list", "--service", "registry")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "ID",
        "SERVICE",
        "GROUP",
        "ORIGIN",
        "EVENT",
        "TYPE",
        "EVENT",
        "ID",
        "ERROR",
        "RECORDED",
        "STATE",
    ]
    assert "hub.admin[1]@7" in out
    assert "UnknownCase: no case case-1 (yet)" in out


async def test_redrive_reaches_the_handler_with_the_same_event_id_and_a_second_is_a_duplicate(
    service_pool: PoolFactory,
    operator_env: None,
    hub_settings: HubSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = f"test.dlq.{uuid.uuid4().hex[:8]}"
    await ensure_topics(hub_settings, [topic, topic + "-dlt"])
    pool = await service_pool("registry")
    original = _record(topic, event_id="evt-redrive")
    dead_id = await _dead_letter(pool, original)
    publisher = KafkaPublisher(hub_settings, client_id="test-dlq")
    await publisher.start()
    relay = OutboxRelay(pool, publisher, schema="registry", batch_size=100, poll_interval_s=0.2)
    fixed = _processor(pool, topic)  # the cause is fixed: the case exists now
    try:
        code, out, err = await _hub(capsys, "dlq", "redrive", "--service", "registry", "--id", str(dead_id))
        assert code == 0, err
        assert out.splitlines() == [
            f"redriven registry {dead_id} -> {topic} (ce_id evt-redrive)",
            "1 redriven, 0 skipped",
        ]
        assert err == ""  # the pool of this test is connected as hub-registry: "running"
        assert await relay.publish_batch() == 2  # the dead letter itself and the redriven record
        [redriven] = await _consume(hub_settings, topic, 1)
        assert redriven.key == original.key
        assert redriven.value == original.value
        headers = dict(redriven.headers)
        assert headers["ce_id"] == b"evt-redrive"
        assert not [name for name in headers if name.startswith("dlt-")]
        assert {n: v for n, v in headers.items() if n not in ("traceparent", REDRIVE_HEADER)} == {
            n: v for n, v in original.headers if n != "traceparent"
        }
        # Plus the operator's attestation of this very redrive (hub.security.redrive_attestation).
        trusted = functools.partial(trusted_operator_keys, hub_settings)
        assert attested_redrive(redriven.headers, Envelope.from_headers(redriven.headers), trusted)
        assert headers["traceparent"].decode().split("-")[1] == TRACEPARENT.split("-")[1]  # same trace
        assert await fixed.process(redriven) is Outcome.PROCESSED
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT event_id FROM effects") == "evt-redrive"

        # A filter leaves already redriven dead letters alone; naming the id redrives again.
        code, out, _ = await _hub(capsys, "dlq", "redrive", "--topic", topic)
        assert (code, out) == (0, "0 redriven, 0 skipped\n")
        assert await _hub(capsys, "dlq", "redrive", "--service", "registry", "--id", str(dead_id)) == (
            0,
            f"redriven registry {dead_id} -> {topic} (ce_id evt-redrive)\n1 redriven, 0 skipped\n",
            "",
        )
        assert await relay.publish_batch() == 1
        second = (await _consume(hub_settings, topic, 2))[1]
        assert dict(second.headers)["ce_id"] == b"evt-redrive"
        assert await fixed.process(second) is Outcome.DUPLICATE
    finally:
        await publisher.stop()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM effects") == 1
    [listed] = await _hub_json(capsys, "dlq", "list", "--topic", topic)
    assert (listed["state"], listed["redrive_count"]) == ("redriven", 2)
    assert listed["redriven_at"] is not None


async def test_redrive_dry_run_changes_nothing_and_a_stopped_service_is_named(
    service_pool: PoolFactory,
    operator_env: None,
    hub_settings: HubSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pool = await service_pool("identity")
    await _dead_letter(pool, _record("hub.identity.requests", event_id="evt-a"))
    await _dead_letter(pool, _record("hub.identity.requests", event_id="evt-b", offset=8))

    dry = await _hub_json(capsys, "dlq", "redrive", "--type", DepartureConfirmed.event_type, "--dry-run")
    assert [r["event_id"] for r in dry["redriven"]] == ["evt-a", "evt-b"]  # recording order
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE aggregatetype = 'redrive'") == 0
        assert await conn.fetchval("SELECT sum(redrive_count) FROM dead_letters") == 0
    await pool.close()  # identity stops: nobody is connected as hub-identity any more

    code, out, err = await _hub(capsys, "dlq", "redrive", "--all")
    assert code == 0
    assert out.splitlines()[-1] == "2 redriven, 0 skipped"
    assert err.startswith("· identity is not running: its redriven records wait in its outbox")
    conn = await asyncpg.connect(hub_settings.database_dsn())
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM identity.outbox WHERE aggregatetype = 'redrive'") == 2
        )
    finally:
        await conn.close()


async def test_purge_erases_the_record_and_keeps_that_it_failed(
    service_pool: PoolFactory, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = await service_pool("registry")
    old = await _dead_letter(pool, _record("hub.ingress", event_id="evt-old"))
    recent = await _dead_letter(pool, _record("hub.ingress", event_id="evt-recent", offset=8))
    kept = await _dead_letter(pool, _record("hub.ingress", event_id="evt-kept", offset=9))
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE dead_letters SET recorded_at = now() - interval '40 days' WHERE id = $1", old
        )

    code, _, err = await _hub(capsys, "dlq", "purge")
    assert (code, err) == (1, "hub: error: purge needs --id, a filter or --all\n")
    assert await _hub(capsys, "dlq", "purge", "--older-than", "30") == (0, "1 purged (registry 1)\n", "")
    assert await _hub(capsys, "dlq", "purge", "--older-than", "30") == (0, "0 purged\n", "")  # already purged
    assert await _hub_json(capsys, "dlq", "purge", "--service", "registry", "--id", str(recent)) == {
        "purged": {"registry": 1},
        "total": 1,
    }

    shown = await _hub_json(capsys, "dlq", "show", str(old), "--service", "registry")
    assert shown["state"] == "purged"
    assert (shown["key"], shown["headers"], shown["payload"]) == (None, None, None)
    assert shown["error_class"] == "UnknownCase"  # the failure itself stays on record
    states = {row["id"]: row["state"] for row in await _hub_json(capsys, "dlq", "list")}
    assert states == {old: "purged", recent: "purged", kept: "open"}
    # A purged dead letter has nothing left to redrive.
    redriven = await _hub_json(
        capsys, "dlq", "redrive", "--service", "registry", "--id", str(old), "--id", str(kept)
    )
    assert [r["id"] for r in redriven["redriven"]] == [kept]


async def test_outbox_status_shows_backlog_age_and_published_rows(
    service_pool: PoolFactory, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = await service_pool("registry")
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]

    async def status() -> dict[str, dict[str, Any]]:
        return {row["service"]: row for row in await _hub_json(capsys, "outbox", "status")}

    before = await status()
    assert before["registry"] == {
        "service": "registry",
        "present": True,
        "backlog": 0,
        "oldest_unpublished_s": None,
        "published_awaiting_purge": 0,
        "retrying": 0,
        "parked": 0,
        "oldest_parked_s": None,
        "park_reasons": [],
    }
    assert before["notifications"]["present"] is False
    async with pool.acquire() as conn, conn.transaction():
        for n in range(3):
            await Transaction(conn, source="urn:test").emit(data, topic="t", business_process_id=f"case-{n}")
        await conn.execute("UPDATE outbox SET created_at = now() - interval '90 seconds'")
    waiting = (await status())["registry"]
    assert (waiting["backlog"], waiting["published_awaiting_purge"]) == (3, 0)
    assert 90 <= waiting["oldest_unpublished_s"] < 150

    publisher = InMemoryPublisher()
    await publisher.start()
    relay = OutboxRelay(pool, publisher, schema="registry", batch_size=2, poll_interval_s=1)
    assert await relay.publish_batch() == 2
    half = (await status())["registry"]
    assert (half["backlog"], half["published_awaiting_purge"]) == (1, 2)
    await relay.publish_batch()
    done = (await status())["registry"]
    assert (done["backlog"], done["oldest_unpublished_s"], done["published_awaiting_purge"]) == (0, None, 3)

    code, out, _ = await _hub(capsys, "outbox", "status")
    assert code == 0
    [registry_line] = [line for line in out.splitlines() if line.startswith("registry")]
    assert registry_line.split() == ["registry", "0", "-", "3", "0", "0"]


async def test_a_schema_without_migration_0002_is_one_clear_error(
    database_url: str, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = await create_pool(database_url, "notifications", size=1)
    try:
        async with pool.acquire() as conn:  # a service last started before this version
            await apply_migrations(conn, load_migrations("hub-runtime", "hub.runtime.sql")[:1])
    finally:
        await pool.close()
    code, out, err = await _hub(capsys, "dlq", "list")
    assert (code, out) == (1, "")
    assert err.startswith(
        "hub: error: notifications: dead_letters lacks the columns of migration hub-runtime 0002"
    )
    assert err.endswith("start the service once to migrate\n")
    assert err.count("\n") == 1
