"""The demo partners and their subscriptions, for the one-machine set-up only.

Migrations create the schema and the catalogue, never a partner: a production hub's
partners register through the operator CLI. ``hub up``, ``hub demo`` and the tests seed
these partners into identity's register and the registry's view of it, after migrating.
Seeding again changes nothing (every row is inserted unless it exists).
"""

from __future__ import annotations

from importlib import resources

import asyncpg

# In this order: the registry's subscriptions name its partners.
SEEDED_SCHEMAS = ("identity", "registry")


async def seed_demo_partners(
    conn: asyncpg.Connection, schemas: tuple[str, ...] = SEEDED_SCHEMAS
) -> list[str]:
    """Seed the schemas of ``schemas`` that exist (migrated); returns those seeded."""
    seeded = []
    for schema in schemas:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.partners"):
            continue
        await conn.execute(resources.files(__package__).joinpath(f"{schema}.sql").read_text("utf-8"))
        seeded.append(schema)
    return seeded
