"""The registry's schema on real PostgreSQL, with the audit tables, and a key to seal with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio

from hub import audit_store
from hub.audit import AuditKey
from hub.db import create_pool
from hub.migrations import apply_migrations, load_migrations
from hub.vault_schema import migrate_vault

KEY = AuditKey(bytes(range(100, 132)))


async def migrated_registry_pool(database_url: str, size: int = 10) -> asyncpg.Pool:
    pool = await create_pool(database_url, "registry", size=size)
    async with pool.acquire() as conn:
        await apply_migrations(
            conn,
            load_migrations("hub-runtime", "hub.sql")
            + load_migrations("registry", "services.registry.migrations"),
        )
        await migrate_vault(conn)  # the per-person data keys (hub/vault.py)
    return pool


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_registry_pool(database_url)
    yield pool
    await pool.close()


@pytest.fixture
def installed_key() -> Iterator[AuditKey]:
    """As the registry's composition root does at start; removed again afterwards."""
    audit_store.install(KEY)
    yield KEY
    audit_store.install(None)
