"""Persons stored before migration 0004 get sealed when the identity service starts."""

from __future__ import annotations

import asyncpg

from services.identity.repository import seal_legacy_person

BATCH = 100


async def seal_batch(conn: asyncpg.Connection) -> int:
    rows = await conn.fetch(
        "SELECT person_id FROM persons WHERE record IS NULL AND erased_at IS NULL "
        "ORDER BY person_id LIMIT $1 FOR UPDATE SKIP LOCKED",
        BATCH,
    )
    for row in rows:
        await seal_legacy_person(conn, row["person_id"])
    return len(rows)
