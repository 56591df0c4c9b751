"""Appends from concurrent transactions form one chain, in commit order, without gaps."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hub.audit import store as audit_store
from hub.audit.chain import AuditEntry, Decision
from tests.integration.audit.conftest import KEY

pytestmark = pytest.mark.asyncio


def entry(writer: int, n: int) -> AuditEntry:
    return AuditEntry(
        decision=Decision.UNROUTED,
        case_id=f"case-{writer}",
        case_type="relocation",
        event_id=f"ev-{writer}-{n}",
        event_type="ch.lu.hub.relocation.arrival-registered.v1",
        trace_id="0" * 32,
        reason="no approved subscription",
    )


async def all_entries(pool: asyncpg.Pool) -> list[tuple[int, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT seq, case_id FROM audit_log ORDER BY seq")
    return [(row["seq"], row["case_id"]) for row in rows]


async def test_concurrent_writers_form_one_chain_each_transaction_in_one_run(pool: asyncpg.Pool) -> None:
    writers, appends = 8, 4
    start = asyncio.Barrier(writers)

    async def write(writer: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await start.wait()  # every transaction is open before the first append
            for n in range(appends):
                await audit_store.append(conn, KEY, [entry(writer, n)])
                await asyncio.sleep(0.005)  # others try to append meanwhile

    await asyncio.gather(*(write(w) for w in range(writers)))
    found = await all_entries(pool)
    assert [seq for seq, _ in found] == list(range(1, writers * appends + 1))
    # The head stays locked until commit, so one transaction's entries are never interleaved.
    runs = [case_id for i, (_, case_id) in enumerate(found) if i == 0 or found[i - 1][1] != case_id]
    assert sorted(runs) == sorted(f"case-{w}" for w in range(writers))
    async with pool.acquire() as conn:
        verdict = await audit_store.verify(conn, KEY)
    assert verdict.intact, verdict.broken
    assert (verdict.entries, verdict.head_seq) == (writers * appends, writers * appends)


async def test_a_second_writer_waits_for_the_first_to_commit(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as first, pool.acquire() as second:
        tx = first.transaction()
        await tx.start()
        await audit_store.append(first, KEY, [entry(1, 0)])

        async def append_second() -> None:
            async with second.transaction():
                await audit_store.append(second, KEY, [entry(2, 0)])

        waiting = asyncio.create_task(append_second())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # blocked on the chain head
        await tx.commit()
        await asyncio.wait_for(waiting, 10)
    assert await all_entries(pool) == [(1, "case-1"), (2, "case-2")]


async def test_a_rolled_back_append_leaves_no_gap(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await audit_store.append(conn, KEY, [entry(1, 0), entry(1, 1)])
        await tx.rollback()
        async with conn.transaction():
            [sealed] = await audit_store.append(conn, KEY, [entry(2, 0)])
        verdict = await audit_store.verify(conn, KEY)
    assert sealed.seq == 1
    assert verdict.intact
    assert verdict.entries == 1


async def test_an_append_outside_a_transaction_is_refused(pool: asyncpg.Pool) -> None:
    """Outside a transaction the head's lock would end with the statement: chains could fork."""
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await audit_store.append(conn, KEY, [entry(1, 0)])
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
