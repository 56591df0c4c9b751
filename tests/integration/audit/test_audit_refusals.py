"""The registry seals each refused partner event into the audit chain, with its dead letter.

The registry's own ingress route (from its composition root) on real PostgreSQL: records
go through the runtime's entrypoint translation as Kafka would hand them over. A refusal
leaves a ``dead_letters`` row, a dead-letter outbox row and a ``refused`` audit entry,
all three or none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import ConsumerRecord

from contracts.catalog import serialize_data
from hub.audit import store as audit_store
from hub.audit.chain import AuditKey
from hub.errors import ConfigurationError, DatabaseUnavailable
from hub.local.demo import PORTAL, TAX_OFFICE, demo_person, move_report, new_case_id
from hub.runtime.consumer import MessageProcessor, Outcome, RetryLater, RetryPolicy, Route
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.messages import Incoming
from hub.runtime.service import ServiceContext
from hub.runtime.settings import HubSettings
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from services.registry import bootstrap, refusals
from tests.fixtures.registry import ingress_route, mirror_partner_key
from tests.fixtures.signing import Crafted, craft
from tests.integration.audit.conftest import KEY

pytestmark = pytest.mark.asyncio

GROUP = "hub.registry.ingress"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PERSON = demo_person(7)


@pytest_asyncio.fixture
async def registry_routes(
    pool: asyncpg.Pool, tmp_path: Path, vault_master_key: MasterKey
) -> AsyncIterator[list[Route]]:
    """The registry's routes as its composition root builds them (with the audit key it loads)."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "audit.key").write_text(KEY.secret.hex())
    ctx = ServiceContext(
        "registry", HubSettings(state_dir=tmp_path, audit_key_file=None), pool, vault_master_key
    )
    yield list(bootstrap.routes(ctx))


@pytest.fixture
def ingress(registry_routes: list[Route]) -> Route:
    return ingress_route(registry_routes)


@pytest_asyncio.fixture
async def portal_key(pool: asyncpg.Pool) -> SigningKey:
    return await mirror_partner_key(pool, PORTAL, "portal-refusals-1")


def _processor(pool: asyncpg.Pool, route: Route) -> MessageProcessor:
    return MessageProcessor(
        pool, route, DeadLetterWriter(pool), source="urn:ch:lu:hub:service:registry", retry=RetryPolicy()
    )


def _move(key: SigningKey | None, *, partner: str = PORTAL, **options: Any) -> Crafted:
    crafted = craft(move_report(PERSON), partner_id=partner, case_id=new_case_id(), key=key, **options)
    return crafted.with_header("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01")


async def _refusals(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM audit_log WHERE decision = 'refused' ORDER BY seq")
    return [dict(row) for row in rows]


async def _counts(pool: asyncpg.Pool) -> tuple[int, int, int, int]:
    """dead_letters rows, outbox rows, audit entries, and the chain head."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM dead_letters) AS dead, (SELECT count(*) FROM outbox) AS outbox,"
            " (SELECT count(*) FROM audit_log) AS audit, (SELECT seq FROM audit_head) AS head"
        )
    assert row is not None
    return row["dead"], row["outbox"], row["audit"], row["head"]


async def _verify(pool: asyncpg.Pool, key: AuditKey = KEY) -> tuple[bool, int]:
    async with pool.acquire() as conn:
        verdict = await audit_store.verify(conn, key)
    return verdict.intact, verdict.entries


async def test_a_forged_event_is_sealed_as_refused_next_to_its_dead_letter(
    pool: asyncpg.Pool, ingress: Route, portal_key: SigningKey
) -> None:
    forged = _move(SigningKey.generate(portal_key.key_id))  # the portal's key id, another key
    assert await _processor(pool, ingress).process(forged.record(11)) is Outcome.DEAD_LETTERED

    [entry] = await _refusals(pool)
    assert entry["partner_id"] == PORTAL  # as claimed ...
    assert entry["sender_verified"] is False  # ... and not proven
    assert entry["reason_class"] == "signature"
    assert entry["reason"].startswith("BadSignature: signature of event ")
    assert entry["reason"].endswith("forged, or changed after signing")
    assert (entry["event_id"], entry["event_type"]) == (forged.event_id, forged.envelope.type)
    assert (entry["case_id"], entry["case_type"], entry["trace_id"]) == (
        forged.envelope.businessprocessid,
        "",
        TRACE,
    )
    assert (entry["person_pseudonym"], entry["citizen_id"], entry["fields"]) == (None, None, [])
    async with pool.acquire() as conn:
        dead = await conn.fetchrow("SELECT event_id, error_class FROM dead_letters")
    assert dead is not None
    assert (dead["event_id"], dead["error_class"]) == (forged.event_id, "BadSignature")
    assert await _verify(pool) == (True, 1)


async def test_refusals_after_the_signature_check_say_the_sender_was_proven(
    pool: asyncpg.Pool, ingress: Route, portal_key: SigningKey
) -> None:
    stale = _move(portal_key, time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=7))
    unknown_partner = _move(SigningKey.generate("nobody-1"), partner="CH/XX/nobody")
    wrong_role = _move(await mirror_partner_key(pool, TAX_OFFICE, "tax-1"), partner=TAX_OFFICE)
    processor = _processor(pool, ingress)
    for offset, crafted in enumerate((stale, unknown_partner, wrong_role)):
        assert await processor.process(crafted.record(offset)) is Outcome.DEAD_LETTERED

    found = {e["event_id"]: e for e in await _refusals(pool)}
    assert [(e["reason_class"], e["sender_verified"], e["partner_id"]) for e in found.values()] == [
        ("replay-window", True, PORTAL),  # a genuine event, signed and verified, but too old
        ("not-authorized", False, "CH/XX/nobody"),
        ("not-authorized", True, TAX_OFFICE),  # its own signed event, of a type its role may not send
    ]
    assert found[stale.event_id]["reason"].startswith("StaleEvent: event time ")
    assert found[unknown_partner.event_id]["reason"] == "NotAuthorized: unknown partner CH/XX/nobody"
    assert "(roles tax-office) may not publish" in found[wrong_role.event_id]["reason"]
    assert await _verify(pool) == (True, 3)


async def test_a_contract_violation_is_refused_without_the_payloads_personal_data(
    pool: asyncpg.Pool, ingress: Route, portal_key: SigningKey
) -> None:
    report = json.loads(serialize_data(move_report(PERSON)))
    report["move_date"] = "the first of December"
    report["contact"]["email"] = "not an address"
    value = json.dumps(report).encode()
    genuine = _move(portal_key)
    # Signed properly over the broken value: the partner's own mistake, provably theirs.
    headers = portal_key.sign_headers(genuine.headers, value)
    record = Crafted(genuine.envelope, tuple(headers), value).record(3)
    assert await _processor(pool, ingress).process(record) is Outcome.DEAD_LETTERED

    [entry] = await _refusals(pool)
    assert (entry["reason_class"], entry["sender_verified"]) == ("contract", True)
    assert entry["reason"].startswith(
        "ContractViolation: invalid data for ch.lu.hub.relocation.move-reported.v1"
    )
    assert "move_date" in entry["reason"]
    written = json.dumps(entry, default=str)
    for personal in (
        PERSON.vn,
        PERSON.official_name,
        PERSON.first_name,
        "the first of December",
        "not an address",
    ):
        assert personal not in written


async def test_the_entry_and_the_dead_letter_commit_together_or_not_at_all(
    pool: asyncpg.Pool, ingress: Route, portal_key: SigningKey
) -> None:
    assert ingress.on_refused is not None
    recorder = ingress.on_refused
    failures = [DatabaseUnavailable("connection lost after the audit append")]

    async def fails_once_after_sealing(
        conn: asyncpg.Connection, record: ConsumerRecord[bytes, bytes], error: BaseException
    ) -> None:
        await recorder(conn, record, error)
        assert (await conn.fetchval("SELECT seq FROM audit_head")) == 1  # sealed, not committed
        if failures:
            raise failures.pop()

    processor = _processor(pool, dataclasses.replace(ingress, on_refused=fails_once_after_sealing))
    record = _move(None).record(5)  # unsigned
    assert isinstance(await processor.attempt(record, 1), RetryLater)
    assert await _counts(pool) == (0, 0, 0, 0)  # the dead letter rolled back with the entry

    assert await processor.attempt(record, 2) is Outcome.DEAD_LETTERED
    assert await _counts(pool) == (1, 1, 1, 1)
    [entry] = await _refusals(pool)
    assert entry["reason"].startswith("UnsignedEvent: ")
    assert await _verify(pool) == (True, 1)


async def test_without_an_audit_key_the_registry_reads_no_ingress_at_all(
    pool: asyncpg.Pool, tmp_path: Path, vault_master_key: MasterKey
) -> None:
    """Fail closed, as deliveries do: no route, so nothing is dead-lettered unrecorded."""
    settings = HubSettings(state_dir=tmp_path, audit_key_file=tmp_path / "missing" / "audit.key")
    ctx = ServiceContext("registry", settings, pool, vault_master_key)
    with pytest.raises(ConfigurationError, match="no audit key"):
        bootstrap.routes(ctx)
    assert await _counts(pool) == (0, 0, 0, 0)


async def test_a_failure_of_the_hub_itself_is_dead_lettered_but_is_no_refusal(
    pool: asyncpg.Pool, ingress: Route, portal_key: SigningKey
) -> None:
    async def broken(msg: Incoming[Any], uow: Any) -> None:
        raise ZeroDivisionError("a bug, not a decision about the event")

    route = Route(
        ingress.topic, GROUP, dict.fromkeys(ingress.handlers, broken), on_refused=ingress.on_refused
    )
    processor = MessageProcessor(
        pool,
        route,
        DeadLetterWriter(pool),
        source="urn:ch:lu:hub:service:registry",
        retry=RetryPolicy(initial_s=0.01, max_s=0.02, max_unexpected_attempts=2),
    )
    assert await processor.process(_move(portal_key).record(9)) is Outcome.DEAD_LETTERED
    assert await _counts(pool) == (1, 1, 0, 0)


async def test_only_the_ingress_route_records_refusals(registry_routes: list[Route], ingress: Route) -> None:
    """The composition root decides which route has the hook; hub/ knows no service."""
    assert isinstance(ingress.on_refused, refusals.RefusalAudit)
    others = [r for r in registry_routes if r is not ingress]
    assert others
    assert all(r.on_refused is None for r in others)


async def test_headers_that_are_not_utf8_are_still_dead_lettered_and_recorded(
    pool: asyncpg.Pool, ingress: Route
) -> None:
    hostile = _move(None).with_header("ce_id", None).with_header("ce_source", None)
    headers = [*hostile.headers, ("ce_id", b"\xff\xfeid"), ("ce_source", b"urn:ch:lu:hub:partner:\xff")]
    record = dataclasses.replace(hostile, headers=tuple(headers)).record(4)
    assert await _processor(pool, ingress).process(record) is Outcome.DEAD_LETTERED

    [entry] = await _refusals(pool)
    assert (entry["event_id"], entry["partner_id"]) == ("\ufffd\ufffdid", "\ufffd")
    assert entry["reason"] == "EnvelopeError: header ce_id is not UTF-8"
    assert (entry["reason_class"], entry["sender_verified"]) == ("contract", False)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT event_id FROM dead_letters") == "\ufffd\ufffdid"
