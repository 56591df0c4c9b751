"""The partner register: admin commands in, partner events out (outbox), seeds announced once."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from contracts import Sector
from contracts.admin import ChangePartnerStatus, RegisterPartner
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.runtime import topics
from services.identity import admin
from services.identity.announcer import PartnerAnnouncer
from services.identity.errors import NotAuthorized, UnknownPartner
from tests.integration.identity.support import (
    CLI,
    IDENTITY,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    OPS,
    SEEDED,
    handle,
    incoming,
    outbox,
)

pytestmark = pytest.mark.asyncio
NEW_PARTNER = "CH/MUN/1062/einwohnerdienste"
HORW = {"level": "municipality", "bfs_number": 1058, "canton": "LU"}


def _register(**changes: Any) -> RegisterPartner:
    fields: dict[str, Any] = {
        "partner_id": NEW_PARTNER,
        "name": "Gemeinde Horw, Einwohnerdienste",
        "sector": Sector.RESIDENT_REGISTRATION,
        "roles": ("municipality",),
        "jurisdiction": HORW,
        "local_person_id_category": "CH.LU.1058",
    }
    return RegisterPartner.model_validate(fields | changes)


async def _partner(pool: asyncpg.Pool, partner_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row: asyncpg.Record = await conn.fetchrow("SELECT * FROM partners WHERE partner_id = $1", partner_id)
    return row


async def _announce_all(pool: asyncpg.Pool) -> int:
    return await PartnerAnnouncer(pool, source=IDENTITY).announce_pending()


async def test_register_partner_stores_it_and_emits_partner_registered(pool: asyncpg.Pool) -> None:
    message = incoming(_register(sedex_id="1-1062-1"), source=CLI, case_id=f"partner:{NEW_PARTNER}")
    await handle(pool, admin.register_partner, message)
    [event] = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert (event.type, event.key, event.business_process_id) == (
        PartnerRegistered.event_type,
        NEW_PARTNER,
        f"partner:{NEW_PARTNER}",
    )
    assert event.data() == {
        "partner_id": NEW_PARTNER,
        "name": "Gemeinde Horw, Einwohnerdienste",
        "sector": "resident-registration",
        "roles": ["municipality"],
        "jurisdiction": HORW,
        "sedex_id": "1-1062-1",
        "local_person_id_category": "CH.LU.1058",
        "status": "active",
    }
    row = await _partner(pool, NEW_PARTNER)
    assert (row["instance"], row["member_class"], row["member_code"], row["subsystem"]) == (
        "CH",
        "MUN",
        "1062",
        "einwohnerdienste",
    )
    assert (row["jurisdiction_level"], row["bfs_number"], row["canton"]) == ("municipality", 1058, "LU")
    assert row["announced_at"] is not None


async def test_registering_again_updates_the_partner_and_announces_it_again(pool: asyncpg.Pool) -> None:
    await handle(pool, admin.register_partner, incoming(_register(), source=CLI))
    renamed = _register(
        name="Gemeinde Horw",
        roles=("municipality", "portal"),
        jurisdiction={"level": "canton", "canton": "LU"},
    )
    await handle(pool, admin.register_partner, incoming(renamed, source=CLI))
    events = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert [e.data()["name"] for e in events] == ["Gemeinde Horw, Einwohnerdienste", "Gemeinde Horw"]
    assert events[-1].data()["jurisdiction"] == {"level": "canton", "bfs_number": None, "canton": "LU"}
    row = await _partner(pool, NEW_PARTNER)
    assert (row["name"], list(row["roles"])) == ("Gemeinde Horw", ["municipality", "portal"])
    assert (row["jurisdiction_level"], row["bfs_number"], row["canton"]) == ("canton", None, "LU")


async def test_suspending_and_activating_emit_status_changes(pool: asyncpg.Pool) -> None:
    await _announce_all(pool)
    suspend = ChangePartnerStatus(partner_id=KRIENS_OFFICE, status="suspended", reason="audit")
    await handle(pool, admin.change_partner_status, incoming(suspend, source=CLI))
    assert (await _partner(pool, KRIENS_OFFICE))["status"] == "suspended"
    await handle(
        pool,
        admin.change_partner_status,
        incoming(ChangePartnerStatus(partner_id=KRIENS_OFFICE, status="active"), source=CLI),
    )
    changes = [
        e for e in await outbox(pool, topics.IDENTITY_PARTNERS) if e.type == PartnerStatusChanged.event_type
    ]
    assert [(e.key, e.data()["status"], e.data()["reason"]) for e in changes] == [
        (KRIENS_OFFICE, "suspended", "audit"),
        (KRIENS_OFFICE, "active", None),
    ]
    assert (await _partner(pool, KRIENS_OFFICE))["status"] == "active"


async def test_a_re_registered_suspended_partner_stays_suspended(pool: asyncpg.Pool) -> None:
    await handle(pool, admin.register_partner, incoming(_register(), source=CLI))
    suspend = ChangePartnerStatus(partner_id=NEW_PARTNER, status="suspended")
    await handle(pool, admin.change_partner_status, incoming(suspend, source=CLI))
    await handle(pool, admin.register_partner, incoming(_register(), source=CLI))
    last = (await outbox(pool, topics.IDENTITY_PARTNERS))[-1]
    assert (last.type, last.data()["status"]) == (PartnerRegistered.event_type, "suspended")


async def test_a_status_change_of_an_unknown_partner_is_refused(pool: asyncpg.Pool) -> None:
    command = ChangePartnerStatus(partner_id=NEW_PARTNER, status="suspended")
    with pytest.raises(UnknownPartner, match="no partner"):
        await handle(pool, admin.change_partner_status, incoming(command, source=CLI))
    assert await outbox(pool) == []


async def test_only_the_cli_or_an_active_operations_partner_may_administer(pool: asyncpg.Pool) -> None:
    municipality = f"urn:ch:lu:hub:partner:{KRIENS_OFFICE}"
    with pytest.raises(NotAuthorized):
        await handle(pool, admin.register_partner, incoming(_register(), source=municipality))
    with pytest.raises(NotAuthorized):
        await handle(pool, admin.register_partner, incoming(_register(), source="urn:somewhere"))
    await handle(pool, admin.register_partner, incoming(_register(), source=f"urn:ch:lu:hub:partner:{OPS}"))
    assert (await _partner(pool, NEW_PARTNER)) is not None


async def test_seeded_partners_are_announced_exactly_once(pool: asyncpg.Pool) -> None:
    assert await _announce_all(pool) == len(SEEDED)
    assert await _announce_all(pool) == 0
    events = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert sorted(e.key for e in events) == sorted(SEEDED)
    assert {e.type for e in events} == {PartnerRegistered.event_type}
    by_id = {e.key: e.data() for e in events}
    assert by_id[LUCERNE_OFFICE]["local_person_id_category"] == "CH.LU.1061"
    assert by_id[OPS]["sector"] == "statistics"
    assert by_id[OPS]["roles"] == ["operations"]
    assert by_id[OPS]["jurisdiction"] == {"level": "canton", "bfs_number": None, "canton": "LU"}
    assert by_id[LUCERNE_OFFICE]["jurisdiction"] == {
        "level": "municipality",
        "bfs_number": 1061,
        "canton": "LU",
    }
    assert by_id["CH/CAN/ZG/steuerverwaltung"]["jurisdiction"] == {
        "level": "canton",
        "bfs_number": None,
        "canton": "ZG",
    }


async def test_a_partner_registered_by_command_is_not_announced_again(pool: asyncpg.Pool) -> None:
    await handle(pool, admin.register_partner, incoming(_register(), source=CLI))
    await _announce_all(pool)
    events = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert [e.key for e in events].count(NEW_PARTNER) == 1


async def test_a_seeded_partner_is_announced_before_its_first_status_change(pool: asyncpg.Pool) -> None:
    suspend = ChangePartnerStatus(partner_id=KRIENS_OFFICE, status="suspended")
    await handle(pool, admin.change_partner_status, incoming(suspend, source=CLI))
    await _announce_all(pool)
    kriens = [e for e in await outbox(pool, topics.IDENTITY_PARTNERS) if e.key == KRIENS_OFFICE]
    assert [(e.type, e.data()["status"]) for e in kriens] == [
        (PartnerRegistered.event_type, "active"),
        (PartnerStatusChanged.event_type, "suspended"),
    ]


async def test_a_hand_written_partner_the_contract_refuses_does_not_stop_the_others(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO partners (partner_id, name, sector, roles) "
            "VALUES ($1, 'Horw', 'police', '{municipality}')",
            "CH/MUN/1058/aaa",
        )
    assert await _announce_all(pool) == len(SEEDED)
    assert "CH/MUN/1058/aaa" not in {e.key for e in await outbox(pool, topics.IDENTITY_PARTNERS)}
    assert (await _partner(pool, "CH/MUN/1058/aaa"))["announced_at"] is None


async def test_a_partner_without_a_jurisdiction_is_not_announced(pool: asyncpg.Pool) -> None:
    """It could fill no slot; announced, the registry would hold a partner it cannot place."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO partners (partner_id, name, sector, roles) "
            "VALUES ($1, 'Horw', 'resident-registration', '{municipality}')",
            "CH/MUN/1058/bbb",
        )
    assert await _announce_all(pool) == len(SEEDED)
    assert "CH/MUN/1058/bbb" not in {e.key for e in await outbox(pool, topics.IDENTITY_PARTNERS)}
    assert (await _partner(pool, "CH/MUN/1058/bbb"))["announced_at"] is None
