"""A person who comes back after `hub person erase` is not recognisable by their pseudonyms.

Partners and the audit log keep the pseudonyms an erased person was known by. Erasure
destroys the person's data key and with it the pseudonym seed sealed in their record;
the same AHVN13 reported again is a new person with a new seed, so every sector
pseudonym and the citizen id are new and none of the old ones can be derived again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from contracts import LocalPersonId, Person, PseudonymsIssued, PseudonymsRequested, Recipient, Sector
from hub.errors import TransientError
from hub.runtime.messages import Incoming
from hub.vault.crypto import Erased, MasterKey
from services.identity import handlers
from services.identity.adapters.postgres import IdentityErasure, PostgresRepositories
from services.identity.erase import erase_person
from services.identity.ports import UnitOfWork
from tests.fixtures.pseudonyms import from_ahvn13_alone
from tests.integration.identity.support import (
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    PORTAL,
    SECRET,
    TAX_OFFICE,
    handle,
    incoming,
    outbox,
    person,
)

pytestmark = pytest.mark.asyncio

# Every partner of the one-machine set-up: all the sectors a person can be known in.
EVERY_PARTNER = (
    (PORTAL, Sector.RESIDENT_REGISTRATION),
    (KRIENS_OFFICE, Sector.RESIDENT_REGISTRATION),
    (LUCERNE_OFFICE, Sector.RESIDENT_REGISTRATION),
    (TAX_OFFICE, Sector.TAX),
    ("CH/MUN/1061/baudirektion", Sector.BUILDING),
    ("CH/CAN/LU/uwe", Sector.ENVIRONMENT),
    ("CH/CAN/LU/gvl", Sector.INSURANCE),
    ("CH/CAN/LU/ops", Sector.STATISTICS),
)
ANNA = person(1, local_id=LocalPersonId(category="CH.LU.1059", id="K-1"))


@dataclass(frozen=True)
class Known:
    """How the hub knows a person after one request: sector → pseudonym, and the citizen id."""

    match: str
    by_sector: dict[str, str]
    citizen_id: str


async def _ask(pool: asyncpg.Pool, master: MasterKey, someone: Person, case_id: str) -> Known:
    """Pseudonyms for every partner and a citizen id, as the registry asks for a new case."""
    requested = PseudonymsRequested(
        person=someone,
        recipients=tuple(Recipient(partner_id=p, sector=s) for p, s in EVERY_PARTNER),
        citizen_pseudonym=True,
    )

    async def issue(msg: Incoming[PseudonymsRequested], uow: UnitOfWork) -> None:
        await handlers.issue_pseudonyms(msg, uow, secret=SECRET)

    [envelope] = await handle(pool, master, issue, incoming(requested, case_id=case_id))
    [row] = [r for r in await outbox(pool) if r.event_id == envelope.id]
    issued = PseudonymsIssued.model_validate_json(row.payload)
    assert len(issued.pseudonyms) == len(EVERY_PARTNER)  # every partner is active: none withheld
    assert issued.citizen_id is not None
    by_sector = {p.sector.value: p.pseudonym for p in issued.pseudonyms}
    return Known(issued.match, by_sector, issued.citizen_id)


async def _erase(pool: asyncpg.Pool, master: MasterKey, vn: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        erasure = await erase_person(conn, master, vn=vn)
    assert erasure.persons == 1


async def _person_ids(pool: asyncpg.Pool) -> list[uuid.UUID]:
    async with pool.acquire() as conn:
        return [r["person_id"] for r in await conn.fetch("SELECT person_id FROM persons ORDER BY created_at")]


def _all(known: Known) -> set[str]:
    return {*known.by_sector.values(), known.citizen_id}


async def test_a_person_back_after_erasure_gets_new_pseudonyms_in_every_sector_and_a_new_citizen_id(
    pool: asyncpg.Pool,
    vault_master_key: MasterKey,
) -> None:
    before = await _ask(pool, vault_master_key, ANNA, "eumzug-before")
    assert before.match == "new"
    assert set(before.by_sector) == {s.value for _, s in EVERY_PARTNER}
    [erased_id] = await _person_ids(pool)

    await _erase(pool, vault_master_key, ANNA.vn)
    back = await _ask(pool, vault_master_key, ANNA, "eumzug-back")

    # Neither the AHVN13, nor the register's local id, nor name and birth date find the old person.
    assert back.match == "new"
    old_id, new_id = await _person_ids(pool)
    assert old_id == erased_id
    assert new_id != erased_id
    for sector, pseudonym in back.by_sector.items():
        assert pseudonym != before.by_sector[sector], sector
    assert back.citizen_id != before.citizen_id
    assert _all(back).isdisjoint(_all(before))  # not even in another sector
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT person_id, sector, pseudonym FROM issued_pseudonyms")
        # The old pseudonyms stay with the erased person (the audit chain refers to them) and
        # lead nowhere; the citizen id finds only the person who came back.
        assert {r["pseudonym"] for r in rows if r["person_id"] == erased_id} == _all(before)
        assert {r["pseudonym"] for r in rows if r["person_id"] == new_id} == _all(back)
        erasure = IdentityErasure(conn, vault_master_key)
        assert (await erasure.locate(vn=None, citizen_id=before.citizen_id)).person_ids == frozenset()
        assert (await erasure.locate(vn=None, citizen_id=back.citizen_id)).person_ids == {new_id}
        # No review was raised: the erased person is no look-alike any more.
        assert await conn.fetchval("SELECT count(*) FROM match_reviews") == 0


async def test_the_erased_seed_is_gone_and_the_old_pseudonyms_cannot_be_derived_again(
    pool: asyncpg.Pool,
    vault_master_key: MasterKey,
) -> None:
    before = await _ask(pool, vault_master_key, ANNA, "eumzug-before")
    [erased_id] = await _person_ids(pool)
    await _erase(pool, vault_master_key, ANNA.vn)
    back = await _ask(pool, vault_master_key, ANNA, "eumzug-back")

    async with pool.acquire() as conn, conn.transaction():
        persons = PostgresRepositories(conn, vault_master_key).persons
        assert isinstance(await persons.record(erased_id), Erased)
        # Nothing to derive from any more; a request still on its way for the erased person
        # is retried, and by then the lookups find only the new one.
        with pytest.raises(TransientError, match="erased"):
            await persons.pseudonym_basis(erased_id)
    # Neither person's pseudonyms are what the AHVN13 alone gives: that would be recomputable.
    async with pool.acquire() as conn:
        versions = {
            r["sector"]: r["key_version"]
            for r in await conn.fetch("SELECT DISTINCT sector, key_version FROM issued_pseudonyms")
        }
    recomputable = {from_ahvn13_alone(SECRET, sector, ANNA.vn, v) for sector, v in versions.items()}
    assert recomputable.isdisjoint(_all(before) | _all(back))


async def test_the_person_who_came_back_keeps_their_new_pseudonyms(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    await _ask(pool, vault_master_key, ANNA, "eumzug-before")
    await _erase(pool, vault_master_key, ANNA.vn)
    back = await _ask(pool, vault_master_key, ANNA, "eumzug-back")
    again = await _ask(pool, vault_master_key, ANNA, "eumzug-again")
    assert again.match == "exact-vn"
    assert again.by_sector == back.by_sector
    assert again.citizen_id == back.citizen_id


async def test_erased_twice_and_back_three_times_never_repeats_a_pseudonym(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    seen: list[set[str]] = []
    for visit in range(3):
        seen.append(_all(await _ask(pool, vault_master_key, ANNA, f"eumzug-{visit}")))
        if visit < 2:
            await _erase(pool, vault_master_key, ANNA.vn)
    assert len(set.union(*seen)) == sum(len(s) for s in seen)
