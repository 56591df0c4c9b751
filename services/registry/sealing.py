"""Cases and pending deliveries stored before migration 0008, and timeline texts stored
before 0009, get sealed at start.

Such a case never learnt its person's subject reference (the AHVN13 was not kept), so it
is sealed under the key of its citizen id if identity told it one, else under a key of
its own. Identity binds the same citizen reference to the person's key, which makes the
two keys one ring (``hub.vault.store.bind``), so erasing the person reaches these too.
A timeline text is sealed under its case's key, after the case (same batch call).
"""

from __future__ import annotations

import json

import asyncpg

from hub.cli.casefile import timeline_context
from hub.vault import store as vault_store
from hub.vault.crypto import Erased, case_ref, citizen_ref
from hub.vault.legacy import SealBatch
from hub.vault.master import installed
from services.registry.domain import Processes
from services.registry.repository import details_context, halves, pending_context

BATCH = 100
# Steps whose clear detail quoted a partner's words about the person before 0009.
_CLEAR_TEXT = "detail_sealed IS NULL AND (detail LIKE 'rejected: %' OR detail LIKE 'action required: %')"


def seal_batch(processes: Processes) -> SealBatch:
    async def seal(conn: asyncpg.Connection) -> int:
        return await _seal_cases(conn, processes) + await _seal_pending(conn) + await _seal_timeline(conn)

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


async def _seal_timeline(conn: asyncpg.Connection) -> int:
    rows = await conn.fetch(
        f"SELECT id, case_id, detail FROM timeline WHERE {_CLEAR_TEXT} "
        "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        BATCH,
    )
    for row in rows:
        summary, text = _split(row["detail"])
        # Under an erased case's key this stores a tombstone: the text is gone, not sealed.
        key = await vault_store.key_for(conn, installed(), case_ref(row["case_id"]))
        await conn.execute(
            "UPDATE timeline SET detail = $2, detail_sealed = $3 WHERE id = $1",
            row["id"],
            summary,
            vault_store.seal_json(key, text, timeline_context(row["id"])),
        )
    return len(rows)


async def strip_clear_timeline(conn: asyncpg.Connection, case_ids: list[str], *, schema: str) -> int:
    """For an erasure: texts of these cases still in clear (written by a registry older than
    0009 that has not sealed them yet) are cut to their summary. Needs no master key."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".timeline'):
        return 0
    if not await _has_sealed_column(conn, schema):
        # Before 0009: the same texts, cut in place.
        where = "(detail LIKE 'rejected: %' OR detail LIKE 'action required: %')"
    else:
        where = _CLEAR_TEXT
    status = await conn.execute(
        f"UPDATE \"{schema}\".timeline SET detail = split_part(detail, ': ', 1) "
        f"WHERE case_id = ANY($1::text[]) AND {where}",
        case_ids,
    )
    return int(status.split()[-1])


async def _has_sealed_column(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'timeline' AND column_name = 'detail_sealed')",
            schema,
        )
    )


def _split(detail: str) -> tuple[str, str]:
    summary, _, text = detail.partition(": ")
    return summary, text
