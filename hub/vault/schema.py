"""The vault's own schema, migrated by every service at start (whichever comes first).

The vault is shared: the registry, identity and notifications all encrypt under the same
person's key. Its tables live in the schema ``vault`` with their own migration history
(``vault.schema_migrations``), so three services applying it record it once; the runtime's
advisory lock lets one at a time through.
"""

from __future__ import annotations

import contextlib

import asyncpg

from hub.errors import UniqueViolation
from hub.runtime.migrations import Migration, apply_migrations, load_migrations

SCHEMA = "vault"


def vault_migrations() -> list[Migration]:
    return load_migrations("hub-vault", "hub.vault.sql")


async def migrate_vault(conn: asyncpg.Connection) -> list[Migration]:
    """Apply what is missing of ``hub/vault/sql``; the connection's search path is restored."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", SCHEMA):
        # Another service may create it at the same moment: IF NOT EXISTS is not atomic.
        with contextlib.suppress(UniqueViolation):
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    search_path = await conn.fetchval("SELECT current_setting('search_path')")
    await conn.execute("SELECT set_config('search_path', $1, false)", SCHEMA)
    try:
        return await apply_migrations(conn, vault_migrations())
    finally:
        await conn.execute("SELECT set_config('search_path', $1, false)", search_path)
