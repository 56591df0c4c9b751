"""A batch's pseudonym requests on PostgreSQL: read ahead once, answered as one by one.

The consumer runs a batch in one transaction (and, after a failure, each record in a
savepoint of its own); ``batch_unit_of_work_factory`` reads what all the batch's requests
need before the first handler runs. These tests run batches as the consumer does, once
with the read-ahead and once with the plain unit of work, from the same database state,
and compare what was answered and what was stored. The in-memory adapter has no batch
variant: it reads nothing ahead.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import LocalPersonId, Person, PseudonymsIssued, PseudonymsRequested, Sector
from hub.runtime.messages import Incoming
from hub.runtime.outbox import OutboxEmitter, OutboxRow, write_rows
from hub.vault import store as vault_store
from hub.vault.crypto import MasterKey, case_ref, citizen_ref
from services.identity import handlers
from services.identity import persons as person_resolution
from services.identity.adapters.postgres import (
    PostgresRepositories,
    PostgresUnitOfWork,
    batch_unit_of_work_factory,
    unit_of_work_factory,
)
from services.identity.domain import CITIZEN_SECTOR
from tests.integration.identity.support import migrated_pool
from tests.unit.identity.support import (
    IDENTITY,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    SECRET,
    TAX_OFFICE,
    incoming,
    person,
    request,
)

pytestmark = pytest.mark.asyncio

BUILDING_OFFICE = "CH/MUN/1061/baudirektion"  # seeded, sector "building"
NOBODY = "CH/MUN/9999/nobody"
TAX = (TAX_OFFICE, Sector.TAX)
KRIENS = (KRIENS_OFFICE, Sector.RESIDENT_REGISTRATION)
LUCERNE = (LUCERNE_OFFICE, Sector.RESIDENT_REGISTRATION)
BUILDING = (BUILDING_OFFICE, Sector.BUILDING)
UNKNOWN = (NOBODY, Sector.TAX)
KRIENS_IDS = [LocalPersonId(category="CH.LU.1059", id=f"K-{n}") for n in range(100)]
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
# What asyncpg asks on its own, once per connection and type: not the adapter's statements.
DRIVER_INTROSPECTION = ("typeinfo_tree", "'jit'")

Request = Incoming[PseudonymsRequested]


class _RollBack(Exception):
    """Ends a batch's transaction without committing it."""


class _RecordFails(Exception):
    """A record whose handler ran and then failed: its savepoint is rolled back."""


@dataclass
class Batch:
    """What running a batch gave: each record's answer (None: none emitted), the rows it
    left behind, and the statements it sent (transaction control left out)."""

    answers: list[PseudonymsIssued | None] = field(default_factory=list)
    stored: dict[str, Any] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_pool(database_url)
    yield pool
    await pool.close()


def restart_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """New persons get seeds 1, 2, 3, … in the order they are created: two runs that create
    the same persons in the same order give them the same pseudonyms."""
    counter = itertools.count(1)
    monkeypatch.setattr(person_resolution, "new_pseudonym_seed", lambda: next(counter).to_bytes(32, "big"))


async def stored_state(conn: asyncpg.Connection) -> dict[str, Any]:
    """What the identity tables hold, without the random person ids: what a batch must leave
    the same whether it read ahead or not."""
    return {
        "persons": await conn.fetchval("SELECT count(*) FROM persons"),
        "pseudonyms": sorted(
            tuple(row)
            for row in await conn.fetch("SELECT sector, pseudonym, key_version FROM issued_pseudonyms")
        ),
        "pairs_per_person": sorted(
            tuple(row)
            for row in await conn.fetch(
                "SELECT count(*), count(DISTINCT sector) FROM issued_pseudonyms GROUP BY person_id"
            )
        ),
        "local_ids": await conn.fetchval("SELECT count(*) FROM local_person_ids"),
        "reviews": await conn.fetchval("SELECT count(*) FROM match_reviews"),
        "sector_keys": sorted(
            tuple(row) for row in await conn.fetch("SELECT sector, version FROM sector_keys")
        ),
        "citizen_refs": await conn.fetchval("SELECT count(*) FROM vault.key_refs WHERE ref LIKE 'citizen:%'"),
    }


async def run_batch(
    pool: asyncpg.Pool,
    master: MasterKey,
    requests: Sequence[Request],
    *,
    read_ahead: bool,
    isolated: bool = False,
    failing: Collection[int] = (),
    commit: bool = False,
) -> Batch:
    """``requests`` as the consumer runs a batch of them: one transaction; ``isolated``,
    each record in a savepoint (the consumer's second pass), where the records at the
    positions ``failing`` fail after their handler ran. Rolled back unless ``commit``."""
    batch = Batch()

    def logged(query: asyncpg.connection.LoggedQuery) -> None:
        text = query.query.lstrip()
        if text.upper().startswith(TRANSACTION_CONTROL) or any(m in text for m in DRIVER_INTROSPECTION):
            return
        batch.statements.append(text)

    async with pool.acquire() as conn:
        conn.add_query_logger(logged)
        try:
            async with conn.transaction():
                factory = (
                    await batch_unit_of_work_factory(master)(conn, requests)
                    if read_ahead
                    else unit_of_work_factory(master)
                )
                pending: list[OutboxRow] = []
                for position, msg in enumerate(requests):
                    emitter = OutboxEmitter(conn, source=IDENTITY, pending=[])
                    uow = factory(conn, emitter)
                    try:
                        if isolated:
                            async with conn.transaction():
                                await handlers.issue_pseudonyms(msg, uow, secret=SECRET)
                                if position in failing:
                                    raise _RecordFails
                        else:
                            await handlers.issue_pseudonyms(msg, uow, secret=SECRET)
                    except _RecordFails:
                        batch.answers.append(None)
                        continue
                    answers = [e.data for e in emitter.emitted if isinstance(e.data, PseudonymsIssued)]
                    batch.answers.append(answers[0] if answers else None)
                    pending.extend(emitter.pending or ())
                await write_rows(conn, pending)
                await asyncio.sleep(0)  # the query logger is called soon after each statement
                conn.remove_query_logger(logged)
                batch.stored = await stored_state(conn)
                if not commit:
                    raise _RollBack
        except _RollBack:
            pass
        finally:
            conn.remove_query_logger(logged)
    return batch


async def run_both(
    pool: asyncpg.Pool,
    master: MasterKey,
    monkeypatch: pytest.MonkeyPatch,
    requests: Sequence[Request],
    **options: Any,
) -> tuple[Batch, Batch]:
    """The batch one by one and read ahead, from the same state and with the same seeds."""
    restart_seeds(monkeypatch)
    one_by_one = await run_batch(pool, master, requests, read_ahead=False, **options)
    restart_seeds(monkeypatch)
    read_ahead = await run_batch(pool, master, requests, read_ahead=True, **options)
    return one_by_one, read_ahead


def asked(someone: Person, *partners: tuple[str, Sector], citizen: bool = False, case: str = "") -> Request:
    msg: Request = incoming(
        request(someone, *partners, citizen=citizen), case_id=case or f"case-{uuid.uuid4().hex[:8]}"
    )
    return msg


async def commit_requests(pool: asyncpg.Pool, master: MasterKey, requests: Sequence[Request]) -> None:
    """Requests answered and committed before the batch under test: the state it meets."""
    await run_batch(pool, master, requests, read_ahead=False, commit=True)


async def erase_case(pool: asyncpg.Pool, master: MasterKey, case_id: str) -> None:
    async with pool.acquire() as conn:
        await vault_store.key_for(conn, master, case_ref(case_id))
        await vault_store.destroy(conn, refs=[case_ref(case_id)])


async def person_id_of(pool: asyncpg.Pool, master: MasterKey, someone: Person) -> uuid.UUID:
    async with pool.acquire() as conn:
        found = await PostgresRepositories(conn, master).persons.by_vn(someone.vn)
    assert found is not None
    return found


async def test_a_mixed_batch_read_ahead_answers_and_stores_as_one_by_one(
    pool: asyncpg.Pool, vault_master_key: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = vault_master_key
    # The state the batch meets: known persons (some with local ids, pseudonyms and a bound
    # citizen id), a rotated sector, a suspended partner, an erased case.
    await commit_requests(
        pool,
        master,
        [
            asked(person(1), KRIENS, TAX, citizen=True),
            asked(person(2, local_id=KRIENS_IDS[2]), KRIENS),
            asked(person(3), TAX, citizen=True),
            asked(person(4, local_id=KRIENS_IDS[4], first_name="Vera", official_name="Vogt"), TAX),
        ],
    )
    async with pool.acquire() as conn, conn.transaction():
        repositories = PostgresRepositories(conn, master)
        await repositories.pseudonyms.rotate("tax")
        await repositories.partners.set_status(LUCERNE_OFFICE, "suspended", "audit")
    await erase_case(pool, master, "erased-case")
    new_with_id = person(7, local_id=KRIENS_IDS[7], first_name="Nina", official_name="Neu")
    requests = [
        asked(person(1), KRIENS, TAX, citizen=True),  # everything known already
        asked(person(2), BUILDING, citizen=True),  # a sector the person has no pseudonym in yet
        asked(new_with_id, KRIENS, TAX, citizen=True),  # a new person
        asked(new_with_id, KRIENS, TAX, LUCERNE, citizen=True),  # the same new person again
        asked(person(8, local_id=KRIENS_IDS[4]), KRIENS, TAX),  # found by person 4's local id
        asked(person(9), TAX),  # a look-alike of persons 1-3: flagged for review
        asked(person(1), UNKNOWN, TAX),  # an unknown partner gets nothing
        asked(person(3), KRIENS, TAX, citizen=True, case="erased-case"),  # erased: no answer
        asked(person(2, local_id=KRIENS_IDS[12]), KRIENS),  # a second local id for person 2
        asked(person(2), KRIENS, citizen=True),  # which is then the newest
        asked(person(9), BUILDING, TAX, citizen=True),  # the look-alike again
        asked(person(10), BUILDING, citizen=True),
        asked(person(1), BUILDING),
    ]
    one_by_one, read_ahead = await run_both(pool, master, monkeypatch, requests)
    assert read_ahead.answers == one_by_one.answers
    assert read_ahead.stored == one_by_one.stored
    # The comparison covers the cases it means to: answers, an erased case, new persons.
    assert [answer is None for answer in read_ahead.answers] == [i == 7 for i in range(len(requests))]
    matches = [answer.match for answer in read_ahead.answers if answer is not None]
    assert {"exact-vn", "local-id", "new", "flagged-for-review"} <= set(matches)
    assert len(read_ahead.statements) < len(one_by_one.statements)


async def test_two_requests_for_one_new_person_in_a_batch_get_one_pseudonym_per_sector(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    someone = person(21, local_id=KRIENS_IDS[21], first_name="Ida", official_name="Imhof")
    requests = [
        asked(someone, KRIENS, TAX, citizen=True),
        asked(someone, TAX, KRIENS, BUILDING, citizen=True),
    ]
    batch = await run_batch(pool, vault_master_key, requests, read_ahead=True, commit=True)
    first, second = batch.answers
    assert first is not None
    assert second is not None
    assert (first.match, second.match) == ("new", "exact-vn")
    assert first.citizen_id == second.citizen_id
    by_partner = {p.partner_id: p.pseudonym for p in second.pseudonyms}
    assert {p.partner_id: p.pseudonym for p in first.pseudonyms} == {
        KRIENS_OFFICE: by_partner[KRIENS_OFFICE],
        TAX_OFFICE: by_partner[TAX_OFFICE],
    }
    person_id = await person_id_of(pool, vault_master_key, someone)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM persons") == 1
        rows = await conn.fetch("SELECT sector FROM issued_pseudonyms WHERE person_id = $1", person_id)
        assert sorted(row["sector"] for row in rows) == sorted(
            ["resident-registration", "tax", "building", CITIZEN_SECTOR]
        )


async def test_a_rolled_back_record_leaves_nothing_the_next_records_of_the_batch_believe(
    pool: asyncpg.Pool, vault_master_key: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer's second pass: the first record creates the person, a local id, their
    pseudonyms and citizen id, then fails; the records after it find none of that."""
    master = vault_master_key
    await commit_requests(pool, master, [asked(person(31), KRIENS)])  # known, without tax pseudonym
    newcomer = person(32, local_id=KRIENS_IDS[32], first_name="Olga", official_name="Odermatt")
    requests = [
        asked(newcomer, KRIENS, TAX, citizen=True),
        asked(person(31), TAX, citizen=True),
        asked(newcomer, TAX, citizen=True),
        asked(person(31), TAX, citizen=True),
        asked(newcomer, KRIENS, citizen=True),
    ]
    one_by_one, read_ahead = await run_both(
        pool, master, monkeypatch, requests, isolated=True, failing={0, 1}
    )
    assert read_ahead.answers == one_by_one.answers
    assert read_ahead.stored == one_by_one.stored
    [_, _, newcomer_answer, known_answer, _] = read_ahead.answers
    assert newcomer_answer is not None
    assert newcomer_answer.match == "new"  # the failed record's person is gone with its savepoint
    assert known_answer is not None
    assert known_answer.match == "exact-vn"
    assert read_ahead.stored["persons"] == 2


async def test_writes_drop_what_the_memo_knew_and_a_rolled_back_savepoint_stays_undone(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    """Directly on the units of work of one batch: each answer the memo held is asked
    again after a write, and a write rolled back with its savepoint is not seen."""
    master = vault_master_key
    await commit_requests(pool, master, [asked(person(41, local_id=KRIENS_IDS[41]), KRIENS)])
    known = await person_id_of(pool, master, person(41))
    newcomer = person(42)
    requests = [
        asked(person(41, local_id=KRIENS_IDS[41]), TAX, KRIENS, citizen=True),
        asked(newcomer, TAX),
    ]
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            factory = await batch_unit_of_work_factory(master)(conn, requests)

            def unit() -> PostgresUnitOfWork:
                built = factory(conn, OutboxEmitter(conn, source=IDENTITY, pending=[]))
                assert isinstance(built, PostgresUnitOfWork)
                return built

            assert await unit().pseudonyms.issued(known, "tax") is None
            assert await unit().persons.by_vn(newcomer.vn) is None
            assert await unit().persons.local_ids_of(known) == [KRIENS_IDS[41]]

            # Rolled back: the memo, emptied by the writes, reads the database, which has none of it.
            async def writes_then_fails() -> None:
                async with conn.transaction():
                    uow = unit()
                    await uow.pseudonyms.record(known, "tax", "tax:rolled-back", 1)
                    await uow.persons.add(newcomer, pseudonym_seed=bytes(32))
                    await uow.persons.link_local_id(known, KRIENS_IDS[43])
                    raise _RecordFails

            with pytest.raises(_RecordFails):
                await writes_then_fails()
            assert await unit().pseudonyms.issued(known, "tax") is None
            assert await unit().persons.by_vn(newcomer.vn) is None
            assert await unit().persons.local_ids_of(known) == [KRIENS_IDS[41]]

            # Kept: a later unit of the batch sees each write.
            uow = unit()
            assert await uow.pseudonyms.record(known, "tax", "tax:kept", 1) == "tax:kept"
            added = await uow.persons.add(newcomer, pseudonym_seed=bytes(32))
            await uow.persons.link_local_id(known, KRIENS_IDS[44])
            later = unit()
            assert await later.pseudonyms.issued(known, "tax") == "tax:kept"
            assert await later.persons.by_vn(newcomer.vn) == added
            assert set(await later.persons.local_ids_of(known)) == {KRIENS_IDS[41], KRIENS_IDS[44]}
        finally:
            await transaction.rollback()


async def test_binding_a_citizen_id_to_an_erased_ring_is_seen_by_the_records_after_it(
    pool: asyncpg.Pool, vault_master_key: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binding a citizen id whose reference names a destroyed key destroys the person's
    ring too (``vault_store.bind``), and with it what the memo read of the person's keys:
    a later case of theirs in that ring is erased for the records after the binding."""
    master = vault_master_key
    someone = person(61)
    await commit_requests(pool, master, [asked(someone, KRIENS, case="case-a")])
    person_id = await person_id_of(pool, master, someone)
    async with pool.acquire() as conn, conn.transaction():
        repositories = PostgresRepositories(conn, master)
        basis = await repositories.persons.pseudonym_basis(person_id)
        citizen_id = basis.pseudonym(SECRET, CITIZEN_SECTOR, 1)
        person_key = await conn.fetchval("SELECT key_id FROM persons WHERE person_id = $1", person_id)
        await vault_store.bind(conn, case_ref("case-b"), person_key)  # a second case of theirs
        # Another service keyed data by the citizen id, and that key was destroyed while its
        # reference stayed (an erasure racing the binding): the state binding guards against.
        other = await vault_store.key_for(conn, master, citizen_ref(citizen_id))
        await conn.execute(
            "UPDATE vault.data_keys SET wrapped = NULL, destroyed_at = now() WHERE key_id = $1", other.key_id
        )
    requests = [
        asked(someone, KRIENS, citizen=True, case="case-a"),  # issues and binds the citizen id
        asked(someone, KRIENS, case="case-b"),
    ]
    one_by_one, read_ahead = await run_both(pool, master, monkeypatch, requests)
    assert read_ahead.answers == one_by_one.answers
    first, second = read_ahead.answers
    assert first is not None
    assert first.citizen_id == citizen_id
    assert second is None  # the case's key went with the person's ring


async def test_a_unit_on_another_connection_reads_the_database_not_the_batch_memo(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    """The memo answers for the batch's own transaction only."""
    requests = [asked(person(51), TAX)]
    async with pool.acquire() as conn, pool.acquire() as other, conn.transaction():
        factory = await batch_unit_of_work_factory(vault_master_key)(conn, requests)
        async with other.transaction():
            committed_elsewhere = await PostgresRepositories(other, vault_master_key).persons.add(
                person(51), pseudonym_seed=bytes(32)
            )
        elsewhere = factory(other, OutboxEmitter(other, source=IDENTITY, pending=[]))
        assert isinstance(elsewhere, PostgresUnitOfWork)
        assert await elsewhere.persons.by_vn(person(51).vn) == committed_elsewhere
        mine = factory(conn, OutboxEmitter(conn, source=IDENTITY, pending=[]))
        assert isinstance(mine, PostgresUnitOfWork)
        assert await mine.persons.by_vn(person(51).vn) is None  # as the batch began


BATCH_SIZE = 50


def fifty_requests(first_serial: int) -> list[Request]:
    """What a busy hour sends: each person with a local id, three partners and a citizen id."""
    return [
        asked(
            person(first_serial + n, local_id=KRIENS_IDS[n], first_name=f"P{n}", official_name=f"O{n}"),
            KRIENS,
            TAX,
            BUILDING,
            citizen=True,
        )
        for n in range(BATCH_SIZE)
    ]


async def test_a_batch_of_known_persons_reads_with_a_few_statements_instead_of_many_per_request(
    pool: asyncpg.Pool, vault_master_key: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = fifty_requests(100)
    await commit_requests(pool, vault_master_key, requests)  # all known, pseudonyms issued
    one_by_one, read_ahead = await run_both(pool, vault_master_key, monkeypatch, requests)
    assert read_ahead.answers == one_by_one.answers
    print(
        f"\n{BATCH_SIZE} known persons: {len(one_by_one.statements)} statements one by one, "
        f"{len(read_ahead.statements)} read ahead"
    )
    assert len(one_by_one.statements) >= 10 * BATCH_SIZE
    # Seven reads ahead and the batch's one outbox insert: nothing per request.
    assert len(read_ahead.statements) <= 8


async def test_a_batch_of_new_persons_reads_ahead_what_it_can(
    pool: asyncpg.Pool, vault_master_key: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = fifty_requests(200)
    async with pool.acquire() as conn, conn.transaction():  # a running hub uses its sectors already
        for sector in ("resident-registration", "tax", "building", CITIZEN_SECTOR):
            await PostgresRepositories(conn, None).pseudonyms.current_version(sector)
    one_by_one, read_ahead = await run_both(pool, vault_master_key, monkeypatch, requests)
    assert read_ahead.answers == one_by_one.answers
    assert read_ahead.stored == one_by_one.stored
    print(
        f"\n{BATCH_SIZE} new persons: {len(one_by_one.statements)} statements one by one, "
        f"{len(read_ahead.statements)} read ahead"
    )
    assert len(read_ahead.statements) < len(one_by_one.statements)
