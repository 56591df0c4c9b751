"""Sector pseudonyms: stable per (person, sector) across key rotations; what each partner gets."""

from __future__ import annotations

import asyncpg
import pytest

from contracts import LocalPersonId, Sector
from hub.messages import Transaction
from services.identity import key_repository as keys
from services.identity.domain import sector_pseudonym
from tests.integration.identity.support import (
    IDENTITY,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    PORTAL,
    SECRET,
    TAX_OFFICE,
    issue,
    person,
)

pytestmark = pytest.mark.asyncio
TAX = (TAX_OFFICE, Sector.TAX)
KRIENS = (KRIENS_OFFICE, Sector.RESIDENT_REGISTRATION)
LUCERNE = (LUCERNE_OFFICE, Sector.RESIDENT_REGISTRATION)


async def _rotate(pool: asyncpg.Pool, sector: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        return await keys.rotate(Transaction(conn, source=IDENTITY), sector)


async def _set_status(pool: asyncpg.Pool, partner_id: str, status: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute("UPDATE partners SET status = $2 WHERE partner_id = $1", partner_id, status)


async def test_partners_of_one_sector_share_a_pseudonym_and_other_sectors_differ(pool: asyncpg.Pool) -> None:
    issued = await issue(pool, person(1), KRIENS, LUCERNE, TAX)
    by_partner = {p.partner_id: p for p in issued.pseudonyms}
    assert by_partner[KRIENS_OFFICE].pseudonym == by_partner[LUCERNE_OFFICE].pseudonym
    assert by_partner[TAX_OFFICE].pseudonym != by_partner[KRIENS_OFFICE].pseudonym
    assert by_partner[TAX_OFFICE].pseudonym == sector_pseudonym(SECRET, "tax", person(1).vn, 1)


async def test_an_issued_pseudonym_survives_a_key_rotation(pool: asyncpg.Pool) -> None:
    before = await issue(pool, person(1), TAX)
    assert await _rotate(pool, "tax") == 2
    after = await issue(pool, person(1), TAX)
    assert after.pseudonyms == before.pseudonyms


async def test_after_a_rotation_new_pairs_get_the_new_key_version(pool: asyncpg.Pool) -> None:
    await issue(pool, person(1), TAX)
    assert await _rotate(pool, "tax") == 2
    assert await _rotate(pool, "tax") == 3
    newcomer = await issue(pool, person(2, first_name="Beat"), TAX)
    assert newcomer.pseudonyms[0].pseudonym == sector_pseudonym(SECRET, "tax", person(2).vn, 3)
    # An existing person new to a sector gets that sector's current version too.
    first_in_registration = await issue(pool, person(1), KRIENS)
    assert first_in_registration.pseudonyms[0].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(1).vn, 1
    )
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT sector, version, retired_at IS NULL AS current FROM sector_keys")
    current = {(r["sector"], r["version"]) for r in rows if r["current"]}
    assert current == {("tax", 3), ("resident-registration", 1)}


async def test_a_rotation_touches_only_its_own_sector(pool: asyncpg.Pool) -> None:
    before = await issue(pool, person(1), KRIENS)
    await _rotate(pool, "tax")
    newcomer = await issue(pool, person(2, first_name="Beat"), KRIENS)
    assert newcomer.pseudonyms[0].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(2).vn, 1
    )
    assert (await issue(pool, person(1), KRIENS)).pseudonyms == before.pseudonyms


async def test_a_partner_gets_a_local_id_only_of_its_own_register(pool: asyncpg.Pool) -> None:
    kriens_id = LocalPersonId(category="CH.LU.1059", id="K-77")
    issued = await issue(pool, person(1, local_id=kriens_id), KRIENS, LUCERNE, TAX)
    by_partner = {p.partner_id: p for p in issued.pseudonyms}
    assert by_partner[KRIENS_OFFICE].local_person_id == kriens_id
    assert by_partner[LUCERNE_OFFICE].local_person_id is None  # Lucerne's register has no id yet
    assert by_partner[TAX_OFFICE].local_person_id is None  # the tax office uses no local ids


async def test_a_local_id_learnt_earlier_reaches_its_register_later(pool: asyncpg.Pool) -> None:
    lucerne_id = LocalPersonId(category="CH.LU.1061", id="L-1")
    await issue(pool, person(1, local_id=lucerne_id), TAX)
    later = await issue(pool, person(1), LUCERNE, KRIENS)
    by_partner = {p.partner_id: p for p in later.pseudonyms}
    assert by_partner[LUCERNE_OFFICE].local_person_id == lucerne_id
    assert by_partner[KRIENS_OFFICE].local_person_id is None


async def test_a_suspended_partner_gets_no_pseudonym(pool: asyncpg.Pool) -> None:
    await _set_status(pool, LUCERNE_OFFICE, "suspended")
    issued = await issue(pool, person(1), KRIENS, LUCERNE, TAX)
    assert {p.partner_id for p in issued.pseudonyms} == {KRIENS_OFFICE, TAX_OFFICE}


async def test_an_unknown_partner_gets_no_pseudonym(pool: asyncpg.Pool) -> None:
    issued = await issue(pool, person(1), ("CH/MUN/9999/unknown", Sector.TAX), TAX)
    assert [p.partner_id for p in issued.pseudonyms] == [TAX_OFFICE]


async def test_the_registers_sector_counts_not_the_one_asked_for(pool: asyncpg.Pool) -> None:
    issued = await issue(pool, person(1), (PORTAL, Sector.TAX), KRIENS)
    portal, kriens = issued.pseudonyms
    assert portal.sector is Sector.RESIDENT_REGISTRATION
    assert portal.pseudonym == kriens.pseudonym


async def test_the_answer_holds_neither_the_ahvn13_nor_the_person_id(pool: asyncpg.Pool) -> None:
    issued = await issue(pool, person(1, local_id=LocalPersonId(category="CH.LU.1059", id="K-1")), KRIENS)
    async with pool.acquire() as conn:
        person_id = await conn.fetchval("SELECT person_id FROM persons")
    text = issued.model_dump_json()
    assert person(1).vn not in text
    assert str(person_id) not in text
