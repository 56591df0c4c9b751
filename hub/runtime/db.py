"""PostgreSQL access: one asyncpg pool per service, pinned to the service's schema.

Each service owns one schema and sets it as the connection's search_path, so its
SQL stays unqualified and two services can never write each other's tables by accident.
"""

from __future__ import annotations

import asyncpg

from hub.errors import DatabaseUnavailable


async def create_pool(dsn: str, schema: str, *, size: int) -> asyncpg.Pool:
    """Open a pool whose connections see only ``schema`` (and public for extensions)."""
    try:
        admin = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as error:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL: {error}") from error
    try:
        await admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        # Two replicas starting at once: IF NOT EXISTS does not cover a concurrent CREATE,
        # the slower one trips over the catalogue's unique index. The schema exists: go on.
        pass
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        server_settings={"search_path": f'"{schema}",public', "application_name": f"hub-{schema}"},
    )
    assert pool is not None  # create_pool only returns None when used as an awaitable context
    return pool
