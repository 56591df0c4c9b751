"""The identity schema on real PostgreSQL (runtime tables + identity migrations)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from tests.integration.identity.support import migrated_pool


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_pool(database_url)
    yield pool
    await pool.close()
