"""The registry's catalogue table and the contracts package describe the same event types."""

from __future__ import annotations

import asyncpg
import pytest

from contracts import CATALOG
from hub.runtime.migrations import apply_migrations, load_migrations

pytestmark = pytest.mark.asyncio


async def test_every_contract_is_catalogued_with_roles_and_sensitivity(database_url: str) -> None:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "public"})
    try:
        await conn.execute("CREATE SCHEMA registry; SET search_path TO registry")
        await apply_migrations(conn, load_migrations("registry", "services.registry.migrations"))
        rows = await conn.fetch("SELECT event_type, sensitivity FROM catalog")
    finally:
        await conn.close()
    catalogued = {row["event_type"] for row in rows}
    assert catalogued == set(CATALOG)
    assert {row["sensitivity"] for row in rows} <= {"public", "internal", "confidential", "secret"}
