"""A service's schema: who creates and migrates it, and what the service's role may do there.

Two ways to run the hub:

* **Local** (``hub up``, the tests): one role does everything, and each service migrates
  its schema when it starts (``HUB_MIGRATE_ON_START``, on by default).
* **Production**: ``hub db migrate`` runs as the owner role (``hub_owner``), creates and
  migrates every schema, and grants each service's role (``hub_identity``, ``hub_registry``,
  ``hub_notifications``) what the service needs on its own schema and the shared vault,
  nothing else: no DDL, no other service's tables, and on an append-only table (the
  registry's audit log) only INSERT and SELECT. The services start with
  ``HUB_MIGRATE_ON_START=false`` and refuse to run against a schema that is behind.

A role that owns nothing cannot disable a table's triggers, drop it or grant itself more:
the audit log's append-only triggers hold against the registry's own role.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from hub.errors import ConfigurationError, UniqueViolation
from hub.runtime.migrations import Migration, apply_migrations, load_migrations
from hub.vault.schema import SCHEMA as VAULT_SCHEMA
from hub.vault.schema import migrate_vault, vault_migrations

ROLE_PREFIX = "hub_"


@dataclass(frozen=True)
class SchemaPlan:
    """What one service's schema holds, as ``hub db migrate`` and a starting service see it."""

    schema: str
    migrations: tuple[Migration, ...]
    # Tables the service may add to and read, never change: no UPDATE, DELETE or TRUNCATE.
    append_only: tuple[str, ...] = ()

    @property
    def role(self) -> str:
        return ROLE_PREFIX + self.schema


def service_migrations(name: str, migrations_package: str) -> tuple[Migration, ...]:
    """The runtime's migrations (outbox, inbox, dead letters) and the service's own."""
    return tuple(
        load_migrations("hub-runtime", "hub.runtime.sql") + load_migrations(name, migrations_package)
    )


async def schema_exists(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema))


async def create_schema(conn: asyncpg.Connection, schema: str) -> None:
    """Create ``schema`` unless it exists; a role without CREATE on the database gets past an
    existing one (CREATE SCHEMA IF NOT EXISTS checks the privilege first)."""
    if await schema_exists(conn, schema):
        return
    # Two replicas starting at once: IF NOT EXISTS does not cover a concurrent CREATE, the
    # slower one trips over the catalogue's unique index. The schema exists then: go on.
    with contextlib.suppress(UniqueViolation):
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


async def migrate(conn: asyncpg.Connection, plan: SchemaPlan) -> list[Migration]:
    """Create and migrate the service's schema and the vault, on ``conn`` (its search path is
    restored afterwards)."""
    await create_schema(conn, plan.schema)
    search_path = await conn.fetchval("SELECT current_setting('search_path')")
    await conn.execute("SELECT set_config('search_path', $1, false)", f'"{plan.schema}"')
    try:
        applied = await apply_migrations(conn, list(plan.migrations))
    finally:
        await conn.execute("SELECT set_config('search_path', $1, false)", search_path)
    return applied + await migrate_vault(conn)


async def missing_migrations(conn: asyncpg.Connection, plan: SchemaPlan) -> list[str]:
    """Migrations of the service's schema or the vault not applied yet, by name."""
    missing: list[str] = []
    for schema, migrations in ((plan.schema, plan.migrations), (VAULT_SCHEMA, tuple(vault_migrations()))):
        table = f'"{schema}".schema_migrations'
        applied: set[tuple[str, int]] = set()
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            rows = await conn.fetch(f"SELECT component, version FROM {table}")
            applied = {(row["component"], row["version"]) for row in rows}
        missing += [
            f"{schema}: {m.component} {m.version:04d}_{m.name}"
            for m in migrations
            if (m.component, m.version) not in applied
        ]
    return missing


async def require_migrated(conn: asyncpg.Connection, plan: SchemaPlan) -> None:
    """Refuse to run on a schema behind the code: with its own role a service cannot migrate."""
    missing = await missing_migrations(conn, plan)
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ConfigurationError(
            f"the database is not migrated ({missing[0]}{more} missing); "
            "run `hub db migrate` as the owner role"
        )


async def role_exists(conn: asyncpg.Connection, role: str) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role))


async def grant_service_role(conn: asyncpg.Connection, plan: SchemaPlan) -> None:
    """Give the service's role its own schema's rows and the vault's, and nothing else."""
    role, schema = f'"{plan.role}"', f'"{plan.schema}"'
    statements = [
        f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        f"GRANT USAGE ON SCHEMA {VAULT_SCHEMA} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {VAULT_SCHEMA} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {VAULT_SCHEMA} TO {role}",
    ]
    statements += [
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{table} FROM {role}" for table in plan.append_only
    ]
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)


@dataclass(frozen=True)
class Migrated:
    schema: str
    applied: tuple[str, ...]
    granted_to: str | None  # the service's role, if it exists in this cluster


async def migrate_all(
    conn: asyncpg.Connection, plans: Sequence[SchemaPlan], *, grant: bool
) -> list[Migrated]:
    """``hub db migrate``: every schema migrated, then (``grant``) each existing service role
    granted its rights. Idempotent: run again, it applies and grants what is missing."""
    done = []
    for plan in plans:
        applied = await migrate(conn, plan)
        granted = None
        if grant and await role_exists(conn, plan.role):
            await grant_service_role(conn, plan)
            granted = plan.role
        done.append(
            Migrated(plan.schema, tuple(f"{m.component} {m.version:04d}_{m.name}" for m in applied), granted)
        )
    return done
