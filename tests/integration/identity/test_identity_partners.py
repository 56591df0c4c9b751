"""The partner register on PostgreSQL: commands in, partner events out through the outbox,
the seeded partners announced once. The rules are tested on the in-memory stores."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from contracts import Sector
from contracts.admin import ChangePartnerStatus, RegisterPartner
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.runtime import topics
from hub.vault.crypto import MasterKey
from services.identity import handlers_admin
from services.identity.adapters.postgres import PostgresUnitsOfWork
from services.identity.announcer import PartnerAnnouncer
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


async def _announce_all(pool: asyncpg.Pool, master: MasterKey) -> int:
    units = PostgresUnitsOfWork(pool, master=master, source=IDENTITY)
    return await PartnerAnnouncer(units).announce_pending()


async def test_register_partner_stores_it_and_emits_partner_registered(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    message = incoming(_register(sedex_id="1-1062-1"), source=CLI, case_id=f"partner:{NEW_PARTNER}")
    await handle(pool, vault_master_key, handlers_admin.register_partner, message)
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


async def test_seeded_partners_are_announced_exactly_once(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    assert await _announce_all(pool, vault_master_key) == len(SEEDED)
    assert await _announce_all(pool, vault_master_key) == 0
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


async def test_a_partner_registered_by_command_is_not_announced_again(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    await handle(pool, vault_master_key, handlers_admin.register_partner, incoming(_register(), source=CLI))
    await _announce_all(pool, vault_master_key)
    events = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert [e.key for e in events].count(NEW_PARTNER) == 1


async def test_a_seeded_partner_is_announced_before_its_first_status_change(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    suspend = ChangePartnerStatus(partner_id=KRIENS_OFFICE, status="suspended")
    await handle(pool, vault_master_key, handlers_admin.change_partner_status, incoming(suspend, source=CLI))
    await _announce_all(pool, vault_master_key)
    kriens = [e for e in await outbox(pool, topics.IDENTITY_PARTNERS) if e.key == KRIENS_OFFICE]
    assert [(e.type, e.data()["status"]) for e in kriens] == [
        (PartnerRegistered.event_type, "active"),
        (PartnerStatusChanged.event_type, "suspended"),
    ]


async def test_a_hand_written_partner_the_contract_refuses_does_not_stop_the_others(
    pool: asyncpg.Pool,
    vault_master_key: MasterKey,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO partners (partner_id, name, sector, roles) "
            "VALUES ($1, 'Horw', 'police', '{municipality}')",
            "CH/MUN/1058/aaa",
        )
    assert await _announce_all(pool, vault_master_key) == len(SEEDED)
    assert "CH/MUN/1058/aaa" not in {e.key for e in await outbox(pool, topics.IDENTITY_PARTNERS)}
    assert (await _partner(pool, "CH/MUN/1058/aaa"))["announced_at"] is None


async def test_a_partner_without_a_jurisdiction_is_not_announced(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    """It could fill no slot; announced, the registry would hold a partner it cannot place."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO partners (partner_id, name, sector, roles) "
            "VALUES ($1, 'Horw', 'resident-registration', '{municipality}')",
            "CH/MUN/1058/bbb",
        )
    assert await _announce_all(pool, vault_master_key) == len(SEEDED)
    assert "CH/MUN/1058/bbb" not in {e.key for e in await outbox(pool, topics.IDENTITY_PARTNERS)}
    assert (await _partner(pool, "CH/MUN/1058/bbb"))["announced_at"] is None
