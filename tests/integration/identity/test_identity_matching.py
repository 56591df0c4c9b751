"""Who is this person, on PostgreSQL: the lookups go through blind indexes over sealed data.

The matching rules themselves are tested on the in-memory stores (``tests/unit/identity``).
"""

from __future__ import annotations

import asyncpg
import pytest

from contracts import LocalPersonId, Sector
from hub.vault.crypto import MasterKey
from tests.integration.identity.support import TAX_OFFICE, issue, person

pytestmark = pytest.mark.asyncio
TAX = (TAX_OFFICE, Sector.TAX)
LUCERNE_ID = LocalPersonId(category="CH.LU.1061", id="L-4711")


async def test_a_known_local_id_matches_through_its_blind_index(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    first = await issue(pool, vault_master_key, person(1, local_id=LUCERNE_ID), TAX)
    other_vn = await issue(pool, vault_master_key, person(3, local_id=LUCERNE_ID), TAX)
    assert other_vn.match == "local-id"
    assert other_vn.pseudonyms == first.pseudonyms
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM persons") == 1
        row = await conn.fetchrow("SELECT local_id, local_id_index, local_id_sealed FROM local_person_ids")
    assert row["local_id"] is None  # only the index and the sealed id are stored
    assert LUCERNE_ID.id.encode() not in bytes(row["local_id_sealed"])
    assert LUCERNE_ID.id not in row["local_id_index"]


async def test_a_look_alike_found_by_date_of_birth_is_flagged_for_review_with_ids_only(
    pool: asyncpg.Pool,
    vault_master_key: MasterKey,
) -> None:
    first = await issue(pool, vault_master_key, person(1), TAX)
    look_alike = await issue(
        pool, vault_master_key, person(2, official_name="MUSTER", first_name="anna"), TAX
    )
    assert look_alike.match == "flagged-for-review"
    assert look_alike.pseudonyms[0].pseudonym != first.pseudonyms[0].pseudonym  # a separate person
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM persons") == 2
        [review] = await conn.fetch("SELECT * FROM match_reviews WHERE NOT resolved")
    assert review["new_person_id"] != review["candidate_person_id"]
    assert review["business_process_id"] == "eumzug-1"
    assert review["reason"] == "same name and date of birth, different AHVN13"
