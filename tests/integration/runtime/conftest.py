from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from hub.runtime.db import create_pool
from hub.runtime.migrations import apply_migrations, load_migrations

SCHEMA = "runtime_test"


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A service-like schema with the runtime's tables (outbox, inbox, dead letters)."""
    pool = await create_pool(database_url, SCHEMA, size=6)
    async with pool.acquire() as conn:
        await apply_migrations(conn, load_migrations("hub-runtime", "hub.runtime.sql"))
        await conn.execute("CREATE TABLE effects (case_id text, note text)")
    yield pool
    await pool.close()
