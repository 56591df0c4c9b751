"""Sector pseudonyms on PostgreSQL: the seed sealed with the person, and key versions in
their table.

What each partner gets and how key rotations work are rules, tested on the in-memory
stores (``tests/unit/identity``); these tests show what the rows hold.
"""

from __future__ import annotations

import base64

import asyncpg
import pytest

from contracts import Person, Sector
from hub.vault.crypto import MasterKey
from services.identity.adapters.postgres import PostgresRepositories
from services.identity.domain import PseudonymBasis, sector_pseudonym
from tests.integration.identity.support import (
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
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
        return await PostgresRepositories(conn, None).pseudonyms.rotate(sector)


async def _basis(pool: asyncpg.Pool, master: MasterKey, someone: Person) -> PseudonymBasis:
    """The AHVN13 and seed identity keeps for ``someone``, read from their sealed record."""
    async with pool.acquire() as conn, conn.transaction():
        persons = PostgresRepositories(conn, master).persons
        person_id = await persons.by_vn(someone.vn)
        assert person_id is not None
        return await persons.pseudonym_basis(person_id)


async def test_the_seeded_partners_of_one_sector_share_a_pseudonym_from_the_sealed_seed(
    pool: asyncpg.Pool,
    vault_master_key: MasterKey,
) -> None:
    issued = await issue(pool, vault_master_key, person(1), KRIENS, LUCERNE, TAX)
    by_partner = {p.partner_id: p for p in issued.pseudonyms}
    assert by_partner[KRIENS_OFFICE].pseudonym == by_partner[LUCERNE_OFFICE].pseudonym
    basis = await _basis(pool, vault_master_key, person(1))
    assert by_partner[TAX_OFFICE].pseudonym == sector_pseudonym(SECRET, "tax", person(1).vn, 1, basis.seed)


async def test_the_seed_is_sealed_in_the_persons_record_and_never_read_out_with_their_data(
    pool: asyncpg.Pool,
    vault_master_key: MasterKey,
) -> None:
    await issue(pool, vault_master_key, person(1), KRIENS, TAX)
    basis = await _basis(pool, vault_master_key, person(1))
    assert basis.seed is not None
    async with pool.acquire() as conn:
        [row] = await conn.fetch("SELECT person_id, record FROM persons")
        # Sealed: the seed is nowhere in the stored bytes, and the person's data comes without it.
        assert basis.seed not in bytes(row["record"])
        assert base64.b64encode(basis.seed) not in bytes(row["record"])
        assert await PostgresRepositories(conn, vault_master_key).persons.record(row["person_id"]) == person(
            1
        )


async def test_key_versions_are_kept_per_sector_with_one_current(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    await issue(pool, vault_master_key, person(1), TAX)
    assert await _rotate(pool, "tax") == 2
    assert await _rotate(pool, "tax") == 3
    await issue(pool, vault_master_key, person(1), KRIENS)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT sector, version, retired_at IS NULL AS current FROM sector_keys")
        versions = await conn.fetch("SELECT sector, key_version FROM issued_pseudonyms")
    current = {(r["sector"], r["version"]) for r in rows if r["current"]}
    assert current == {("tax", 3), ("resident-registration", 1)}
    assert {(r["sector"], r["key_version"]) for r in versions} == {("tax", 1), ("resident-registration", 1)}
