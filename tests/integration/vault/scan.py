"""Looking for personal data in what PostgreSQL stores: rows as read, and the files on disk."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

SCHEMAS = ("registry", "identity", "notifications", "vault")


async def readable_rows(conn: asyncpg.Connection, schemas: Iterable[str] = SCHEMAS) -> dict[str, list[bytes]]:
    """Every value of every table, as bytes (bytea raw, everything else as text)."""
    tables = await conn.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'",
        list(schemas),
    )
    found: dict[str, list[bytes]] = {}
    for table in tables:
        name = f'"{table["table_schema"]}"."{table["table_name"]}"'
        values: list[bytes] = []
        for row in await conn.fetch(f"SELECT * FROM {name}"):
            values += [v if isinstance(v, bytes) else str(v).encode() for v in row.values() if v is not None]
        found[name] = values
    return found


async def relation_files(conn: asyncpg.Connection, schemas: Iterable[str] = SCHEMAS) -> dict[str, bytes]:
    """The on-disk bytes of every table, its TOAST table and its indexes, after a checkpoint:
    old row versions and compressed values are in there too."""
    await conn.execute("CHECKPOINT")
    rows = await conn.fetch(
        """
        SELECT n.nspname || '.' || c.relname AS name, pg_relation_filepath(c.oid) AS path
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'i')
        UNION ALL
        SELECT n.nspname || '.' || c.relname || ' (TOAST)', pg_relation_filepath(t.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE n.nspname = ANY($1::text[])
        """,
        list(schemas),
    )
    return {
        row["name"]: await conn.fetchval("SELECT pg_read_binary_file($1)", row["path"])
        for row in rows
        if row["path"] is not None
    }


def hits(stored: dict[str, bytes] | dict[str, list[bytes]], needles: Iterable[str]) -> list[tuple[str, str]]:
    """(relation, needle) for each needle found, in UTF-8."""
    found = []
    for name, content in stored.items():
        blobs = content if isinstance(content, list) else [content]
        for needle in needles:
            if any(needle.encode() in blob for blob in blobs):
                found.append((name, needle))
    return found
