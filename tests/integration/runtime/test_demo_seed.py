"""No migration creates a partner; the local set-up seeds the demo's, once however often it
is asked, in the schemas that exist."""

from __future__ import annotations

import pytest

from hub.local.seed import seed_demo_partners
from hub.runtime.db import connect
from hub.runtime.schemas import migrate_all
from services import SERVICE_NAMES, load_definition

pytestmark = pytest.mark.asyncio


async def test_migrations_register_no_partner_and_the_seed_registers_the_demos_once(
    database_url: str,
) -> None:
    conn = await connect(database_url)
    try:
        assert await seed_demo_partners(conn) == []  # nothing migrated yet: nothing to seed into
        await migrate_all(conn, [load_definition(name).schema_plan() for name in SERVICE_NAMES], grant=False)
        counts = (
            "SELECT (SELECT count(*) FROM identity.partners), (SELECT count(*) FROM registry.partners),"
            " (SELECT count(*) FROM registry.subscriptions)"
        )
        assert tuple(await conn.fetchrow(counts)) == (0, 0, 0)
        assert await seed_demo_partners(conn) == ["identity", "registry"]
        seeded = tuple(await conn.fetchrow(counts))
        assert await seed_demo_partners(conn) == ["identity", "registry"]
        assert tuple(await conn.fetchrow(counts)) == seeded
        identity_ids = {r[0] for r in await conn.fetch("SELECT partner_id FROM identity.partners")}
        registry_ids = {r[0] for r in await conn.fetch("SELECT partner_id FROM registry.partners")}
        assert identity_ids == registry_ids
        assert {
            "CH/MUN/1059/einwohnerdienste",
            "CH/MUN/1711/einwohnerdienste",
            "CH/CAN/LU/ops",
        } <= identity_ids
        assert seeded[2] > 30  # per slot, per case type
    finally:
        await conn.close()
