"""The registry records each routing decision in the transaction of the deliveries it makes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import asyncpg
import pytest

from contracts import IssuedPseudonym, Sector
from hub.audit import store as audit_store
from hub.audit.chain import Decision
from hub.vault.crypto import MasterKey
from services.registry.adapters.postgres import PostgresUnitOfWork
from services.registry.case_domain import Case
from services.registry.delivery import deliver
from services.registry.model import NewCase, Subscriber
from services.registry.subscriptions_domain import Grant
from tests.fixtures.registry import registry_unit_of_work
from tests.integration.audit.conftest import KEY

pytestmark = pytest.mark.asyncio

CASE = "eumzug-audit-1"
MOVE = "ch.lu.hub.relocation.move-reported.v1"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
KRIENS = Subscriber(
    "CH/MUN/1059/einwohnerdienste",
    "resident-registration",
    "hub.delivery.ch.mun.1059.einwohnerdienste",
    (
        Grant(
            "record the departure",
            "RHG Art. 12",
            ("person.official_name", "previous_address", "move_date"),
            ("departure-municipality",),
        ),
    ),
)
TAX = Subscriber(
    "CH/CAN/LU/steuerverwaltung",
    "tax",
    "hub.delivery.ch.can.lu.steuerverwaltung",
    (
        Grant(
            "assign the tax domicile",
            "StHG Art. 4",
            ("person.first_name", "move_date"),
            ("arrival-tax-office",),
        ),
    ),
)
DATA = {
    "person": {"official_name": "Muster", "first_name": "Anna", "sex": "2", "date_of_birth": "1990-04-17"},
    "previous_address": {"street": "Schachenstrasse", "town": "Kriens"},
    "move_date": "2026-12-01",
}
ISSUED = {
    KRIENS.partner_id: IssuedPseudonym(
        partner_id=KRIENS.partner_id, sector=Sector.RESIDENT_REGISTRATION, pseudonym="rr:abc"
    )
}


async def open_case(conn: asyncpg.Connection, master: MasterKey) -> Case:
    uow = registry_unit_of_work(conn, master, audit_key=KEY)
    await uow.cases.add(
        NewCase(
            case_id=CASE,
            case_type="relocation",
            trace_id=TRACE,
            traceparent=None,
            test_delivery=False,
            reported_event_id="ev-move",
            details={},
            deadline_s=60,
        )
    )
    case = await uow.cases.get(CASE)
    assert case is not None
    return case


async def run_deliver(
    conn: asyncpg.Connection, master: MasterKey, case: Case, **kwargs: Any
) -> PostgresUnitOfWork:
    uow = registry_unit_of_work(conn, master, audit_key=KEY)
    arguments: dict[str, Any] = {
        "event_type": MOVE,
        "data": DATA,
        "subscribers": [KRIENS, TAX],
        "person_path": "person",
        "pseudonyms": ISSUED,
        "trace_id": TRACE,
        "reference_id": "ev-move",
    }
    await deliver(uow, case=case, **(arguments | kwargs))
    return uow


async def audit_rows(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch("SELECT * FROM audit_log ORDER BY seq")]


async def test_a_delivery_and_a_withheld_partner_are_recorded_with_the_outbox_row(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    async with pool.acquire() as conn:
        case = await open_case(conn, vault_master_key)
        async with conn.transaction():
            uow = await run_deliver(conn, vault_master_key, case, citizen_id="citizen-services:c1")
        [delivery] = [emitted.envelope for emitted in uow.emitter.emitted]
        outbox = await conn.fetch("SELECT topic, headers FROM outbox")
        rows = await audit_rows(conn)
        verdict = await audit_store.verify(conn, KEY)
    assert [row["topic"] for row in outbox] == [KRIENS.delivery_topic]
    assert ["ce_id", delivery.id] in json.loads(outbox[0]["headers"])
    delivered, withheld = rows
    assert delivered["decision"] == Decision.DELIVERED
    assert (delivered["partner_id"], delivered["sector"]) == (KRIENS.partner_id, "resident-registration")
    assert delivered["delivery_event_id"] == delivery.id
    assert (delivered["event_id"], delivered["event_type"]) == ("ev-move", MOVE)
    assert delivered["fields"] == [
        "move_date",
        "person.official_name",
        "person.sector_pseudonym",
        "previous_address.street",
        "previous_address.town",
    ]
    assert (delivered["person_pseudonym"], delivered["citizen_id"]) == ("rr:abc", "citizen-services:c1")
    assert (delivered["legal_basis"], delivered["purpose"]) == ("RHG Art. 12", "record the departure")
    assert delivered["basis"] == "party: departure-municipality"
    assert (delivered["case_id"], delivered["trace_id"]) == (CASE, TRACE)
    assert withheld["decision"] == Decision.WITHHELD
    assert withheld["partner_id"] == TAX.partner_id
    assert withheld["fields"] == []
    assert withheld["delivery_event_id"] is None
    assert "no pseudonym issued" in withheld["reason"]
    assert withheld["basis"] == "party: arrival-tax-office"
    assert verdict.intact
    assert verdict.entries == 2


async def test_an_event_without_subscribers_is_recorded_as_unrouted(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    async with pool.acquire() as conn:
        case = await open_case(conn, vault_master_key)
        async with conn.transaction():
            await run_deliver(conn, vault_master_key, case, subscribers=[])
        [row] = await audit_rows(conn)
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    assert outbox == 0
    assert (row["decision"], row["partner_id"], row["reason"]) == (
        "unrouted",
        None,
        "no approved subscription",
    )


async def test_a_rolled_back_delivery_leaves_neither_outbox_row_nor_record(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    async with pool.acquire() as conn:
        case = await open_case(conn, vault_master_key)
        tx = conn.transaction()
        await tx.start()
        await run_deliver(conn, vault_master_key, case)
        assert len(await audit_rows(conn)) == 2  # written in the transaction ...
        await tx.rollback()
        assert await audit_rows(conn) == []  # ... and gone with it
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_a_citizens_disclosures_are_found_by_citizen_id_and_through_their_cases(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    async with pool.acquire() as conn:
        case = await open_case(conn, vault_master_key)
        async with conn.transaction():
            await run_deliver(conn, vault_master_key, case, citizen_id="citizen-services:c1")
        async with conn.transaction():
            # A later delivery written before the case knew its citizen (no id on the entry).
            await run_deliver(
                conn, vault_master_key, case, subscribers=[TAX], pseudonyms=None, person_path=None
            )
        only_first = await audit_store.disclosures(conn, citizen_id="citizen-services:c1")
        await conn.execute("UPDATE cases SET citizen_id = 'citizen-services:c1' WHERE case_id = $1", CASE)
        by_citizen = await audit_store.disclosures(conn, citizen_id="citizen-services:c1")
        by_case = await audit_store.disclosures(conn, case_id=CASE)
        nobody = await audit_store.disclosures(conn, citizen_id="citizen-services:other")
    assert [(s.seq, s.entry.partner_id) for s in only_first] == [(1, KRIENS.partner_id)]
    assert [(s.seq, s.entry.partner_id) for s in by_citizen] == [(1, KRIENS.partner_id), (3, TAX.partner_id)]
    assert by_case == by_citizen  # withheld (seq 2) is not a disclosure
    assert nobody == []


async def test_a_recipient_without_a_basis_gets_nothing_and_nothing_is_recorded(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    """Every recipient comes through the party rules; one that did not is a bug, never a delivery."""
    unexplained = dataclasses.replace(KRIENS, grants=())
    async with pool.acquire() as conn:
        case = await open_case(conn, vault_master_key)
        with pytest.raises(ValueError, match="no basis to deliver"):
            async with conn.transaction():
                await run_deliver(conn, vault_master_key, case, subscribers=[unexplained])
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
        assert await audit_rows(conn) == []
