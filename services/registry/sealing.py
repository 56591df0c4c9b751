"""Cases and pending deliveries stored before migration 0008 get sealed at start.

Such a case never learnt its person's subject reference (the AHVN13 was not kept), so it
is sealed under the key of its citizen id if identity told it one, else under a key of
its own. Identity binds the same citizen reference to the person's key, which makes the
two keys one ring (``hub.vault_store.bind``), so erasing the person reaches these too.
"""

from __future__ import annotations

import json

import asyncpg

from hub import vault_store
from hub.vault import Erased, case_ref, citizen_ref
from hub.vault_legacy import SealBatch
from hub.vault_master import installed
from services.registry.domain import Processes
from services.registry.repository import details_context, halves, pending_context

BATCH = 100


def seal_batch(processes: Processes) -> SealBatch:
    async def seal(conn: asyncpg.Connection) -> int:
        return await _seal_cases(conn, processes) + await _seal_pending(conn)

    return seal


async def _seal_cases(conn: asyncpg.Connection, processes: Processes) -> int:
    master = installed()
    rows = await conn.fetch(
        "SELECT case_id, case_type, details, citizen_id FROM cases WHERE details_sealed IS NULL "
        "ORDER BY case_id LIMIT $1 FOR UPDATE SKIP LOCKED",
        BATCH,
    )
    for row in rows:
        case_id = row["case_id"]
        key = await vault_store.key_for(conn, master, case_ref(case_id))
        if row["citizen_id"] and not isinstance(key, Erased):
            await vault_store.bind(conn, citizen_ref(row["citizen_id"]), key.key_id)
        process = processes.by_case_type.get(row["case_type"])
        opening = process.opened_by.event_type if process is not None else None
        readable, protected = halves(opening, json.loads(row["details"]))
        await conn.execute(
            "UPDATE cases SET details = $2::jsonb, details_sealed = $3 WHERE case_id = $1",
            case_id,
            json.dumps(readable),
            vault_store.seal_json(key, protected, details_context(case_id)),
        )
    return len(rows)


async def _seal_pending(conn: asyncpg.Connection) -> int:
    rows = await conn.fetch(
        "SELECT request_id, case_id, event_type, data FROM pending_deliveries WHERE data_sealed IS NULL "
        "ORDER BY request_id LIMIT $1 FOR UPDATE SKIP LOCKED",
        BATCH,
    )
    for row in rows:
        key = await vault_store.key_for(conn, installed(), case_ref(row["case_id"]))
        readable, protected = halves(row["event_type"], json.loads(row["data"]))
        await conn.execute(
            "UPDATE pending_deliveries SET data = $2::jsonb, data_sealed = $3 WHERE request_id = $1",
            row["request_id"],
            json.dumps(readable),
            vault_store.seal_json(key, protected, pending_context(row["request_id"])),
        )
    return len(rows)
