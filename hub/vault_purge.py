"""Copies of an erased person's events that the runtime keeps in clear: published outbox
rows and dead-letter records of their cases, in every service schema.

Data keys do not reach these: the outbox holds events as they were published (a request
to identity carries the AHVN13) until its retention removes them, and a dead letter keeps
its record for redriving. Erasure removes what is already published and purges the dead
letters' contents (the record that a failure happened stays). Unpublished outbox rows
are left to the relay: deleting them would break "nothing published unless committed,
nothing committed lost"; they are published, then removed by retention. What Kafka keeps
is governed by the topics' retention, outside the hub's database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Purged:
    outbox_rows: int
    dead_letters: int


async def purge_case_copies(
    conn: asyncpg.Connection, schemas: Iterable[str], case_ids: Sequence[str]
) -> Purged:
    """In the caller's transaction; schemas without runtime tables (not migrated) are skipped."""
    if not case_ids:
        return Purged(0, 0)
    outbox = dead = 0
    for schema in schemas:
        if await _has_table(conn, schema, "outbox"):
            status = await conn.execute(
                f'DELETE FROM "{schema}".outbox '
                "WHERE aggregateid = ANY($1::text[]) AND published_at IS NOT NULL",
                list(case_ids),
            )
            outbox += int(status.split()[-1])
        if await _has_column(conn, schema, "dead_letters", "payload"):
            status = await conn.execute(
                f'UPDATE "{schema}".dead_letters SET purged_at = now(), kafka_key = NULL, headers = NULL, '
                "payload = NULL WHERE purged_at IS NULL AND kafka_key = ANY($1::bytea[])",
                [case_id.encode() for case_id in case_ids],
            )
            dead += int(status.split()[-1])
    return Purged(outbox, dead)


async def _has_table(conn: asyncpg.Connection, schema: str, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".{table}'))


async def _has_column(conn: asyncpg.Connection, schema: str, table: str, column: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)",
            schema,
            table,
            column,
        )
    )
