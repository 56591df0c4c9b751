"""The database refuses changes to the log; changes made around that are found by verify.

The tests connect as the superuser the embedded PostgreSQL runs with: it can disable the
triggers, as a database administrator could, and the seals still tell.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from hub.audit import store as audit_store
from hub.audit.chain import AuditEntry, Decision, Problem, Verdict
from hub.errors import DatabaseError
from tests.integration.audit.conftest import KEY

pytestmark = pytest.mark.asyncio
ENTRIES = 6


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        decision=Decision.DELIVERED,
        case_id="eumzug-1",
        case_type="relocation",
        event_id=f"ev-{n}",
        event_type="ch.lu.hub.relocation.move-reported.v1",
        trace_id="0" * 32,
        partner_id="CH/CAN/LU/steuerverwaltung",
        sector="tax",
        delivery_event_id=f"dl-{n}",
        fields=("move_date", "person.first_name"),
        person_pseudonym="tax:abc",
        citizen_id="citizen-services:xyz",
        legal_basis="StHG Art. 4",
        purpose="assign the tax domicile",
    )


@pytest_asyncio.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A chain of six entries, written in three transactions."""
    async with pool.acquire() as conn:
        for first in range(1, ENTRIES + 1, 2):
            async with conn.transaction():
                await audit_store.append(conn, KEY, [entry(first), entry(first + 1)])
        yield conn


async def tamper(conn: asyncpg.Connection, *statements: str) -> None:
    """As an administrator would: triggers off, the change, triggers on again."""
    async with conn.transaction():
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        await conn.execute("ALTER TABLE audit_head DISABLE TRIGGER USER")
        for statement in statements:
            await conn.execute(statement)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
        await conn.execute("ALTER TABLE audit_head ENABLE TRIGGER USER")


async def verdict(conn: asyncpg.Connection, anchors: dict[int, str] | None = None) -> Verdict:
    return await audit_store.verify(conn, KEY, anchors=anchors)


# PL/pgSQL's RAISE EXCEPTION without an explicit code.
RAISED_BY_A_TRIGGER = "P0001"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET legal_basis = 'none' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
        "TRUNCATE audit_log",
    ],
    ids=["update", "delete", "truncate"],
)
async def test_the_trigger_refuses_to_change_or_remove_entries(
    conn: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(DatabaseError, match="append-only") as refused:
        await conn.execute(statement)
    assert refused.value.sqlstate == RAISED_BY_A_TRIGGER
    assert (await verdict(conn)).intact


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM audit_head",
        "UPDATE audit_head SET seq = 4, entry_hash = (SELECT entry_hash FROM audit_log WHERE seq = 4)",
        "UPDATE audit_head SET seq = 7, entry_hash = repeat('a', 64)",
        "TRUNCATE audit_head",
    ],
    ids=["delete", "rewind", "past-the-end", "truncate"],
)
async def test_the_head_only_advances_onto_an_appended_entry(
    conn: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(DatabaseError, match="audit_head") as refused:
        await conn.execute(statement)
    assert refused.value.sqlstate == RAISED_BY_A_TRIGGER
    assert (await conn.fetchval("SELECT seq FROM audit_head")) == ENTRIES


async def test_an_intact_chain_verifies(conn: asyncpg.Connection) -> None:
    result = await verdict(conn)
    assert result.intact
    assert (result.entries, result.head_seq) == (ENTRIES, ENTRIES)


async def test_a_changed_field_is_found(conn: asyncpg.Connection) -> None:
    await tamper(conn, "UPDATE audit_log SET fields = array['move_date'] WHERE seq = 3")
    result = await verdict(conn)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.problem) == (3, Problem.CHANGED)


async def test_a_changed_field_with_a_recomputed_plain_hash_is_found(conn: asyncpg.Connection) -> None:
    """Without the HMAC key, a hash recomputed in the database (plain SHA-256) does not fit."""
    await tamper(
        conn,
        "UPDATE audit_log SET partner_id = 'CH/MUN/1061/einwohnerdienste',"
        " entry_hash = encode(sha256(convert_to(partner_id || prev_hash, 'UTF8')), 'hex') WHERE seq = 5",
        "UPDATE audit_log SET prev_hash = (SELECT entry_hash FROM audit_log WHERE seq = 5) WHERE seq = 6",
    )
    result = await verdict(conn)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.problem) == (5, Problem.CHANGED)


async def test_a_removed_entry_is_found(conn: asyncpg.Connection) -> None:
    await tamper(conn, "DELETE FROM audit_log WHERE seq = 4")
    result = await verdict(conn)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.problem) == (4, Problem.REMOVED)
    assert result.entries == 3  # entries 1 to 3 were checked before the break


async def test_swapped_entries_are_found(conn: asyncpg.Connection) -> None:
    await tamper(
        conn,
        "UPDATE audit_log SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 1000",
    )
    result = await verdict(conn)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.problem) == (2, Problem.CHANGED)


async def test_a_removed_last_entry_is_found_through_the_head(conn: asyncpg.Connection) -> None:
    await tamper(conn, f"DELETE FROM audit_log WHERE seq = {ENTRIES}")
    result = await verdict(conn)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.problem) == (ENTRIES, Problem.REMOVED)


async def test_a_cut_off_end_with_a_rewound_head_needs_an_anchor(conn: asyncpg.Connection) -> None:
    anchor = {ENTRIES: await conn.fetchval(f"SELECT entry_hash FROM audit_log WHERE seq = {ENTRIES}")}
    await tamper(
        conn,
        f"DELETE FROM audit_log WHERE seq > {ENTRIES - 2}",
        f"UPDATE audit_head SET seq = {ENTRIES - 2},"
        f" entry_hash = (SELECT entry_hash FROM audit_log WHERE seq = {ENTRIES - 2})",
    )
    assert (await verdict(conn)).intact  # the limit of a chain kept in one database
    result = await verdict(conn, anchors=anchor)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.problem) == (ENTRIES, Problem.ANCHOR)
