"""The registry's schema as its service prepares it at start, and the hub's master key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from hub.runtime.settings import HubSettings
from hub.vault.crypto import MasterKey
from hub.vault.master import load_master_key
from tests.fixtures.registry import migrated_registry_pool


@pytest_asyncio.fixture
async def pool(hub_settings: HubSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_registry_pool(hub_settings.database_dsn(), size=4)
    yield pool
    await pool.close()


@pytest.fixture
def master_key(hub_settings: HubSettings) -> MasterKey:
    """The hub's master key as its services load it at start (created under its state
    directory, as a local set-up does): case details are sealed under it."""
    return load_master_key(hub_settings, create=True)
