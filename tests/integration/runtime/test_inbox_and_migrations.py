"""Inbox deduplication and versioned migrations against real PostgreSQL."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.errors import ConfigurationError
from hub.runtime import inbox
from hub.runtime.migrations import apply_migrations, load_migrations

pytestmark = pytest.mark.asyncio


def _envelope(event_id: str, source: str = "urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste") -> Envelope:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    return Envelope.new(data, source=source, business_process_id="case-1", event_id=event_id)


async def test_inbox_accepts_an_event_once_per_consumer(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await inbox.claim(conn, "group-a", _envelope("e-1"))
        assert not await inbox.claim(conn, "group-a", _envelope("e-1"))
        assert await inbox.claim(conn, "group-b", _envelope("e-1"))


async def test_inbox_key_is_source_and_id_together(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await inbox.claim(conn, "g", _envelope("e-1", source="urn:a"))
        assert await inbox.claim(conn, "g", _envelope("e-1", source="urn:b"))


async def test_inbox_claim_rolls_back_with_the_effect(pool: asyncpg.Pool) -> None:
    async def claim_then_fail() -> None:
        async with pool.acquire() as conn, conn.transaction():
            assert await inbox.claim(conn, "g", _envelope("e-9"))
            raise RuntimeError("effect failed")

    with pytest.raises(RuntimeError, match="effect failed"):
        await claim_then_fail()
    async with pool.acquire() as conn:
        assert await inbox.claim(conn, "g", _envelope("e-9"))  # not remembered: will be redone


async def test_migrations_apply_once(pool: asyncpg.Pool) -> None:
    migrations = load_migrations("registry", "services.registry.migrations")
    async with pool.acquire() as conn:
        assert len(await apply_migrations(conn, migrations)) == len(migrations)
        assert await apply_migrations(conn, migrations) == []
        # The schema and the catalogue, never a partner: hub up seeds the demo's (hub/local/seed).
        assert await conn.fetchval("SELECT count(*) FROM catalog") > 0
        assert await conn.fetchval("SELECT count(*) FROM partners") == 0
        assert await conn.fetchval("SELECT count(*) FROM subscriptions") == 0


async def test_a_changed_applied_migration_is_refused(pool: asyncpg.Pool) -> None:
    runtime = load_migrations("hub-runtime", "hub.runtime.sql")[0]
    tampered = dataclasses.replace(runtime, sql=runtime.sql + "\n-- edited later")
    async with pool.acquire() as conn:
        with pytest.raises(ConfigurationError, match="changed after it was applied"):
            await apply_migrations(conn, [tampered])
