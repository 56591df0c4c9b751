"""The registry's schema on real PostgreSQL, with the audit tables, and a key to seal with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from hub.audit.chain import AuditKey
from tests.fixtures.registry import migrated_registry_pool

KEY = AuditKey(bytes(range(100, 132)))


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_registry_pool(database_url)
    yield pool
    await pool.close()
