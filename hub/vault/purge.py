"""Copies of an erased person's events that the runtime keeps in clear: outbox rows and
dead-letter records of their cases, in every service schema.

Data keys do not reach these: the outbox holds events as they are published (a request to
identity carries the AHVN13), and a dead letter keeps its record for redriving. Erasure
deletes the outbox rows of the person's cases and purges the dead letters' contents (the
record that a failure happened stays).

Unpublished rows are the relay's: deleting one breaks "nothing committed lost" (a partner
never hears of a step), so ``hub person erase`` first waits, outside its transaction, for
the relays to publish them (``unpublished_copies``), and deletes them only when told to
(``--force``). What Kafka keeps is governed by the topics' retention (``hub/runtime/topics.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True)
class Purged:
    # Per schema, only schemas where something was done.
    outbox_rows: dict[str, int] = field(default_factory=dict)  # published copies deleted
    unpublished_rows: dict[str, int] = field(default_factory=dict)  # deleted before the relay sent them
    dead_letters: dict[str, int] = field(default_factory=dict)  # contents purged


async def unpublished_copies(
    conn: asyncpg.Connection, schemas: Iterable[str], case_ids: Sequence[str]
) -> dict[str, int]:
    """Outbox rows of these cases the relays have not published yet, per schema (only
    schemas that have some). Reads committed rows only: a row a relay is publishing right
    now still counts."""
    waiting: dict[str, int] = {}
    for schema in await _holding(conn, schemas, case_ids, "outbox"):
        count = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".outbox '
            "WHERE aggregateid = ANY($1::text[]) AND published_at IS NULL",
            list(case_ids),
        )
        _add(waiting, schema, int(count))
    return waiting


async def purge_case_copies(
    conn: asyncpg.Connection,
    schemas: Iterable[str],
    case_ids: Sequence[str],
    *,
    unpublished: bool = False,
) -> Purged:
    """In the caller's transaction; schemas without runtime tables (not migrated) are skipped.

    ``unpublished``: delete rows the relay has not published too. A row a relay holds
    (claimed, being sent) is waited for: once the relay commits it is published, and is
    deleted as such. Without it, unpublished rows are left alone (the caller checks
    ``unpublished_copies`` afterwards, in the same transaction).
    """
    purged = Purged()
    schemas = tuple(schemas)  # walked twice
    published_only = "" if unpublished else " AND published_at IS NOT NULL"
    for schema in await _holding(conn, schemas, case_ids, "outbox"):
        rows = await conn.fetch(
            f'DELETE FROM "{schema}".outbox WHERE aggregateid = ANY($1::text[]){published_only} '
            "RETURNING published_at IS NULL AS unpublished",
            list(case_ids),
        )
        _add(purged.outbox_rows, schema, sum(not row["unpublished"] for row in rows))
        _add(purged.unpublished_rows, schema, sum(row["unpublished"] for row in rows))
    # A schema not yet at runtime migration 0002 keeps no records in its dead letters.
    for schema in await _holding(conn, schemas, case_ids, "dead_letters", column="payload"):
        status = await conn.execute(
            f'UPDATE "{schema}".dead_letters SET purged_at = now(), kafka_key = NULL, headers = NULL, '
            "payload = NULL WHERE purged_at IS NULL AND kafka_key = ANY($1::bytea[])",
            [case_id.encode() for case_id in case_ids],
        )
        _add(purged.dead_letters, schema, int(status.split()[-1]))
    return purged


async def _holding(
    conn: asyncpg.Connection,
    schemas: Iterable[str],
    case_ids: Sequence[str],
    table: str,
    *,
    column: str | None = None,
) -> list[str]:
    """The schemas that have ``table`` (with ``column``): services that never ran here have
    none. No schema at all without cases: there is nothing to look for."""
    if not case_ids:
        return []
    if column is None:
        return [schema for schema in schemas if await _has_table(conn, schema, table)]
    return [schema for schema in schemas if await _has_column(conn, schema, table, column)]


def _add(counts: dict[str, int], schema: str, count: int) -> None:
    if count:
        counts[schema] = count


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
