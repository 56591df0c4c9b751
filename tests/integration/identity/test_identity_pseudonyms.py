"""Sector pseudonyms: stable per (person, sector) across key rotations; what each partner gets.

A person stored now has a pseudonym seed in their sealed record and their pseudonyms
derive from AHVN13 and seed; persons stored before seeds (sealed or still plain) keep
the legacy derivation from the AHVN13 alone, so nothing already issued changes.
"""

from __future__ import annotations

import base64

import asyncpg
import pytest

from contracts import LocalPersonId, Person, Sector
from hub.runtime.outbox import Transaction
from services.identity import key_repository as keys
from services.identity import repository as repo
from services.identity import sealing
from services.identity.domain import PseudonymBasis, sector_pseudonym
from tests.integration.identity.support import (
    IDENTITY,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    PORTAL,
    SECRET,
    TAX_OFFICE,
    issue,
    issued_before,
    person,
    plain_person,
    sealed_without_seed,
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


async def _basis(pool: asyncpg.Pool, someone: Person) -> PseudonymBasis:
    """The AHVN13 and seed identity keeps for ``someone``, read from their sealed record."""
    async with pool.acquire() as conn, conn.transaction():
        tx = Transaction(conn, source=IDENTITY)
        person_id = await repo.person_by_vn(tx, someone.vn)
        assert person_id is not None
        return await repo.pseudonym_basis(tx, person_id, someone.vn)


async def test_partners_of_one_sector_share_a_pseudonym_and_other_sectors_differ(pool: asyncpg.Pool) -> None:
    issued = await issue(pool, person(1), KRIENS, LUCERNE, TAX)
    by_partner = {p.partner_id: p for p in issued.pseudonyms}
    assert by_partner[KRIENS_OFFICE].pseudonym == by_partner[LUCERNE_OFFICE].pseudonym
    assert by_partner[TAX_OFFICE].pseudonym != by_partner[KRIENS_OFFICE].pseudonym
    basis = await _basis(pool, person(1))
    assert by_partner[TAX_OFFICE].pseudonym == sector_pseudonym(SECRET, "tax", person(1).vn, 1, basis.seed)


async def test_a_new_person_gets_a_sealed_seed_and_pseudonyms_not_derivable_from_the_ahvn13_alone(
    pool: asyncpg.Pool,
) -> None:
    issued = await issue(pool, person(1), KRIENS, TAX)
    basis = await _basis(pool, person(1))
    assert basis.vn == person(1).vn
    assert basis.seed is not None
    assert len(basis.seed) >= 16
    legacy = {
        sector_pseudonym(SECRET, "resident-registration", person(1).vn, 1),
        sector_pseudonym(SECRET, "tax", person(1).vn, 1),
    }
    assert {p.pseudonym for p in issued.pseudonyms}.isdisjoint(legacy)
    async with pool.acquire() as conn:
        [row] = await conn.fetch("SELECT person_id, record FROM persons")
        tx = Transaction(conn, source=IDENTITY)
        # Sealed: the seed is nowhere in the stored bytes, and the person's data comes without it.
        assert basis.seed not in bytes(row["record"])
        assert base64.b64encode(basis.seed) not in bytes(row["record"])
        record = await repo.person_record(tx, row["person_id"])
        assert isinstance(record, dict)
        assert set(record) == {"vn", "official_name", "first_name", "sex", "date_of_birth"}


async def test_the_same_person_asking_again_gets_the_same_pseudonyms(pool: asyncpg.Pool) -> None:
    first = await issue(pool, person(1), KRIENS, LUCERNE, TAX)
    again = await issue(pool, person(1), KRIENS, LUCERNE, TAX)
    assert again.match == "exact-vn"
    assert again.pseudonyms == first.pseudonyms
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM persons") == 1


async def test_a_person_found_by_local_id_keeps_their_seed(pool: asyncpg.Pool) -> None:
    kriens_id = LocalPersonId(category="CH.LU.1059", id="K-9")
    first = await issue(pool, person(1, local_id=kriens_id), TAX)
    # The register sends its id with an AHVN13 that identity does not know: the local id finds
    # the person, and their pseudonyms still derive from the AHVN13 and seed first recorded.
    again = await issue(pool, person(7, local_id=kriens_id), TAX, KRIENS)
    assert again.match == "local-id"
    assert again.pseudonyms[0] == first.pseudonyms[0]
    basis = await _basis(pool, person(1))
    assert again.pseudonyms[1].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(1).vn, 1, basis.seed
    )


async def test_two_persons_get_different_pseudonyms_and_seeds(pool: asyncpg.Pool) -> None:
    anna = await issue(pool, person(1), KRIENS, TAX)
    beat = await issue(pool, person(2, first_name="Beat"), KRIENS, TAX)
    assert {p.pseudonym for p in anna.pseudonyms}.isdisjoint({p.pseudonym for p in beat.pseudonyms})
    assert (await _basis(pool, person(1))).seed != (await _basis(pool, person(2))).seed


async def test_a_person_sealed_before_seeds_keeps_the_legacy_derivation(pool: asyncpg.Pool) -> None:
    person_id = await sealed_without_seed(pool, person(1))
    issued_then = sector_pseudonym(SECRET, "tax", person(1).vn, 1)
    await issued_before(pool, person_id, "tax", issued_then)

    issued = await issue(pool, person(1), TAX, KRIENS)

    assert issued.match == "exact-vn"
    by_partner = {p.partner_id: p.pseudonym for p in issued.pseudonyms}
    assert by_partner[TAX_OFFICE] == issued_then
    # A sector new to the person: still the rule the person was stored under, no seed added.
    assert by_partner[KRIENS_OFFICE] == sector_pseudonym(SECRET, "resident-registration", person(1).vn, 1)
    assert (await _basis(pool, person(1))).seed is None


async def test_a_person_stored_in_plain_columns_keeps_the_legacy_derivation_once_sealed(
    pool: asyncpg.Pool,
) -> None:
    person_id = await plain_person(pool, person(1))
    issued_then = sector_pseudonym(SECRET, "citizen-services", person(1).vn, 1)
    await issued_before(pool, person_id, "citizen-services", issued_then)
    before_sealing = await issue(pool, person(1), TAX)
    assert before_sealing.pseudonyms[0].pseudonym == sector_pseudonym(SECRET, "tax", person(1).vn, 1)

    async with pool.acquire() as conn, conn.transaction():
        assert await sealing.seal_batch(conn) == 1

    after_sealing = await issue(pool, person(1), TAX, KRIENS)
    assert after_sealing.pseudonyms[0] == before_sealing.pseudonyms[0]
    assert after_sealing.pseudonyms[1].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(1).vn, 1
    )
    assert (await _basis(pool, person(1))).seed is None
    async with pool.acquire() as conn:
        assert await repo.person_by_citizen_id(conn, issued_then) == person_id


async def test_an_issued_pseudonym_survives_a_key_rotation(pool: asyncpg.Pool) -> None:
    before = await issue(pool, person(1), TAX)
    assert await _rotate(pool, "tax") == 2
    after = await issue(pool, person(1), TAX)
    assert after.pseudonyms == before.pseudonyms


async def test_a_legacy_persons_issued_pseudonym_survives_a_key_rotation(pool: asyncpg.Pool) -> None:
    person_id = await sealed_without_seed(pool, person(1))
    issued_then = sector_pseudonym(SECRET, "tax", person(1).vn, 1)
    await issued_before(pool, person_id, "tax", issued_then)
    assert await _rotate(pool, "tax") == 2
    assert await _rotate(pool, "resident-registration") == 2
    issued = await issue(pool, person(1), TAX, KRIENS)
    by_partner = {p.partner_id: p.pseudonym for p in issued.pseudonyms}
    assert by_partner[TAX_OFFICE] == issued_then
    # The new pair takes the sector's current key version, under the legacy rule.
    assert by_partner[KRIENS_OFFICE] == sector_pseudonym(SECRET, "resident-registration", person(1).vn, 2)


async def test_after_a_rotation_new_pairs_get_the_new_key_version(pool: asyncpg.Pool) -> None:
    await issue(pool, person(1), TAX)
    assert await _rotate(pool, "tax") == 2
    assert await _rotate(pool, "tax") == 3
    newcomer = await issue(pool, person(2, first_name="Beat"), TAX)
    beat = await _basis(pool, person(2))
    assert newcomer.pseudonyms[0].pseudonym == sector_pseudonym(SECRET, "tax", person(2).vn, 3, beat.seed)
    # An existing person new to a sector gets that sector's current version too.
    first_in_registration = await issue(pool, person(1), KRIENS)
    anna = await _basis(pool, person(1))
    assert first_in_registration.pseudonyms[0].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(1).vn, 1, anna.seed
    )
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT sector, version, retired_at IS NULL AS current FROM sector_keys")
    current = {(r["sector"], r["version"]) for r in rows if r["current"]}
    assert current == {("tax", 3), ("resident-registration", 1)}


async def test_a_rotation_touches_only_its_own_sector(pool: asyncpg.Pool) -> None:
    before = await issue(pool, person(1), KRIENS)
    await _rotate(pool, "tax")
    newcomer = await issue(pool, person(2, first_name="Beat"), KRIENS)
    beat = await _basis(pool, person(2))
    assert newcomer.pseudonyms[0].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(2).vn, 1, beat.seed
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
