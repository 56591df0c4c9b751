"""Who is this person: exact AHVN13 first, then a register's local id; look-alikes go to review."""

from __future__ import annotations

import asyncpg
import pytest

from contracts import LocalPersonId, Sector
from tests.integration.identity.support import TAX_OFFICE, issue, person

pytestmark = pytest.mark.asyncio
TAX = (TAX_OFFICE, Sector.TAX)
LUCERNE_ID = LocalPersonId(category="CH.LU.1061", id="L-4711")


async def _persons(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM persons")
    return count


async def _reviews(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return list(await conn.fetch("SELECT * FROM match_reviews WHERE NOT resolved ORDER BY id"))


async def test_a_first_request_creates_the_person_and_a_repeat_matches_the_ahvn13(pool: asyncpg.Pool) -> None:
    first = await issue(pool, person(1), TAX)
    again = await issue(pool, person(1, official_name="Muster-Meier"), TAX)
    assert (first.match, again.match) == ("new", "exact-vn")
    assert again.pseudonyms == first.pseudonyms
    assert await _persons(pool) == 1


async def test_the_ahvn13_wins_over_a_local_id_of_someone_else(pool: asyncpg.Pool) -> None:
    await issue(pool, person(1, local_id=LUCERNE_ID), TAX)
    second = await issue(pool, person(2, first_name="Beat"), TAX)
    # Person 2 presents person 1's local id: the AHVN13 decides, and the id keeps its owner.
    later = await issue(pool, person(2, first_name="Beat", local_id=LUCERNE_ID), TAX)
    assert later.match == "exact-vn"
    assert later.pseudonyms == second.pseudonyms
    assert await _persons(pool) == 2


async def test_a_known_local_id_matches_when_the_ahvn13_is_unknown(pool: asyncpg.Pool) -> None:
    first = await issue(pool, person(1, local_id=LUCERNE_ID), TAX)
    other_vn = await issue(pool, person(3, first_name="Anna", local_id=LUCERNE_ID), TAX)
    assert other_vn.match == "local-id"
    assert other_vn.pseudonyms == first.pseudonyms  # the same person, the same pseudonym
    assert await _persons(pool) == 1


async def test_same_name_and_birth_is_never_merged_but_flagged_for_review(pool: asyncpg.Pool) -> None:
    first = await issue(pool, person(1), TAX)
    look_alike = await issue(pool, person(2, official_name="MUSTER", first_name="anna"), TAX)
    assert look_alike.match == "flagged-for-review"
    assert look_alike.pseudonyms[0].pseudonym != first.pseudonyms[0].pseudonym  # a separate person
    assert await _persons(pool) == 2
    [review] = await _reviews(pool)
    assert review["new_person_id"] != review["candidate_person_id"]
    assert review["business_process_id"] == "eumzug-1"
    assert review["reason"] == "same name and date of birth, different AHVN13"


async def test_a_flagged_person_is_matched_by_ahvn13_next_time_without_a_new_review(
    pool: asyncpg.Pool,
) -> None:
    await issue(pool, person(1), TAX)
    await issue(pool, person(2), TAX)
    assert (await issue(pool, person(2), TAX)).match == "exact-vn"
    assert len(await _reviews(pool)) == 1


async def test_a_different_first_name_is_simply_a_new_person(pool: asyncpg.Pool) -> None:
    await issue(pool, person(1), TAX)
    assert (await issue(pool, person(2, first_name="Anne"), TAX)).match == "new"
    assert await _reviews(pool) == []
