"""The registry's worker outlives the database being away: a connection refused at the door
(PostgreSQL restarting) is an outage to wait out, never a crash that stops the service."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hub.errors import DatabaseUnavailable
from hub.local.embedded.ports import free_port
from hub.vault.crypto import MasterKey
from services.registry.adapters.postgres import PostgresRegistry
from services.registry.domain import load_processes
from services.registry.escalation import Escalator
from tests.fixtures.registry import AUDIT_KEY

pytestmark = pytest.mark.asyncio
SOURCE = "urn:ch:lu:hub:service:registry"


async def _nowhere() -> asyncpg.Pool:
    """A pool whose every connection is refused: nothing listens on its port."""
    pool = await asyncpg.create_pool(f"postgresql://hub@127.0.0.1:{free_port()}/hub", min_size=0, max_size=1)
    assert pool is not None
    return pool


async def test_a_refused_connection_is_the_database_being_away(vault_master_key: MasterKey) -> None:
    pool = await _nowhere()
    try:
        transactional = PostgresRegistry(master_key=vault_master_key, audit_key=AUDIT_KEY).transactional(
            pool, source=SOURCE
        )

        async def work(_uow: object) -> int:
            return 1

        with pytest.raises(DatabaseUnavailable, match="unreachable"):
            await transactional(work)
    finally:
        await pool.close()


async def test_the_escalator_keeps_checking_while_the_database_is_away(vault_master_key: MasterKey) -> None:
    pool = await _nowhere()
    try:
        registry = PostgresRegistry(master_key=vault_master_key, audit_key=AUDIT_KEY)
        escalator = Escalator(
            registry.transactional(pool, source=SOURCE),
            load_processes(),
            ops_email="ops@example.ch",
            interval_s=0.05,
        )
        stop = asyncio.Event()
        running = asyncio.create_task(escalator.run(stop))
        await asyncio.sleep(0.3)  # several rounds, each refused
        assert not running.done(), running.exception() if running.done() else None
        stop.set()
        await asyncio.wait_for(running, 5)
    finally:
        await pool.close()
