"""One database for a module of registry contract tests, migrated once; each test rolls back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.fixtures.infrastructure import Infrastructure, fresh_database
from tests.fixtures.registry import migrated_registry_pool


async def _migrate(url: str) -> None:
    pool = await migrated_registry_pool(url, size=1)
    await pool.close()


@pytest.fixture(scope="module")
def registry_database(infrastructure: Infrastructure) -> Iterator[str]:
    with fresh_database(infrastructure) as url:
        asyncio.run(_migrate(url))
        yield url
