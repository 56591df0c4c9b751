"""The registry's cache of partners, keys and subscriptions on real PostgreSQL: a change
committed in this process is read by the next unit of work, never a moment later; one
committed by another replica arrives by NOTIFY; one nobody announces is read once the
entry is as old as the TTL (the clock is the test's: no waiting for it)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
import pytest_asyncio

from hub.local.demo import PORTAL, TAX_OFFICE
from hub.runtime.outbox import OutboxEmitter
from hub.vault.crypto import MasterKey
from services.registry.adapters.postgres import PostgresRegistry
from services.registry.adapters.postgres.lookup_notices import LookupNotices
from services.registry.lookups import LookupCache
from services.registry.model import Partner, PartnerKey, SubscriptionRecord
from services.registry.ports import UnitOfWork
from services.registry.subscriptions_domain import ALL_CASES
from tests.fixtures.registry import AUDIT_KEY, REGISTRY_SOURCE, migrated_registry_pool, mirror_partner_key

pytestmark = pytest.mark.asyncio

TTL_S = 30.0
EVENT = "ch.lu.hub.relocation.move-reported.v1"
KEY_ID = "portal-cache-1"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_registry_pool(database_url, size=4)
    await mirror_partner_key(pool, PORTAL, KEY_ID)
    yield pool
    await pool.close()


class Replica:
    """One registry process's adapter: its own cache, units of work on the shared database."""

    def __init__(self, pool: asyncpg.Pool, master: MasterKey, cache: LookupCache) -> None:
        self.pool, self.cache = pool, cache
        self.registry = PostgresRegistry(master_key=master, audit_key=AUDIT_KEY, lookups=cache)

    async def run(self, work: Callable[[UnitOfWork], Awaitable[object]]) -> object:
        return await self.registry.transactional(self.pool, source=REGISTRY_SOURCE)(work)

    async def partner(self) -> Partner:
        async def get(uow: UnitOfWork) -> Partner | None:
            return await uow.partners.get(PORTAL)

        found = await self.run(get)
        assert isinstance(found, Partner)
        return found

    async def key(self) -> PartnerKey:
        async def find(uow: UnitOfWork) -> PartnerKey | None:
            return await uow.partner_keys.find(KEY_ID)

        found = await self.run(find)
        assert isinstance(found, PartnerKey)
        return found

    async def subscribers(self) -> list[tuple[str, str]]:
        """Partner and scope of each subscription routing the event."""

        async def to(uow: UnitOfWork) -> list[tuple[str, str]]:
            subscribed = await uow.subscriptions.to(EVENT, "relocation")
            return [(s.subscription.partner_id, s.subscription.scope) for s in subscribed]

        found = await self.run(to)
        assert isinstance(found, list)
        return found


def replica(pool: asyncpg.Pool, master: MasterKey, clock: Clock | None = None) -> Replica:
    return Replica(pool, master, LookupCache(ttl_s=TTL_S, clock=clock or Clock()))


async def suspend(uow: UnitOfWork) -> None:
    await uow.partners.set_status(PORTAL, "suspended")


async def revoke(uow: UnitOfWork) -> None:
    await uow.partner_keys.revoke(KEY_ID, dt.datetime.now(dt.UTC))


async def subscribe_tax_office_to_all_cases(uow: UnitOfWork) -> None:
    await uow.subscriptions.put(
        SubscriptionRecord(
            partner_id=TAX_OFFICE,
            event_type=EVENT,
            case_type="relocation",
            purpose="statistics",
            legal_basis="StatG LU § 5",
            legal_basis_url=None,
            fields=("move_date",),
            retention_days=30,
            status="approved",
            scope=ALL_CASES,
        )
    )


async def test_what_was_read_once_is_held(pool: asyncpg.Pool, vault_master_key: MasterKey) -> None:
    here = replica(pool, vault_master_key)
    for _ in range(3):
        assert (await here.partner()).active
        assert (await here.key()).partner_id == PORTAL
        await here.subscribers()
    assert (here.cache.misses, here.cache.hits) == (3, 6)


async def test_a_change_committed_here_is_read_by_the_next_unit_of_work(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    here = replica(pool, vault_master_key)
    assert (await here.partner()).active
    assert (await here.key()).revoked_at is None
    assert (TAX_OFFICE, ALL_CASES) not in await here.subscribers()
    await here.run(subscribe_tax_office_to_all_cases)
    assert (TAX_OFFICE, ALL_CASES) in await here.subscribers()
    await here.run(revoke)
    assert (await here.key()).revoked_at is not None
    await here.run(suspend)
    assert (await here.partner()).status == "suspended"


async def test_a_revocation_is_not_served_from_memory_between_its_commit_and_the_callback(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    """The database commits before the committer's task resumes to drop the cache: other
    units of work may run in between, and must not see the key as it was."""
    here = replica(pool, vault_master_key)
    assert (await here.key()).revoked_at is None
    async with pool.acquire() as conn:
        emitter = OutboxEmitter(conn, source=REGISTRY_SOURCE)
        async with conn.transaction():
            await revoke(here.registry(conn, emitter))
            # Not committed yet: others still read the key as the database has it, unrevoked.
            assert (await here.key()).revoked_at is None
        # Committed; ``emitter.committed()`` (the callback) has not run.
        assert (await here.key()).revoked_at is not None
        emitter.committed()
    assert (await here.key()).revoked_at is not None


async def test_a_change_rolled_back_is_never_served(pool: asyncpg.Pool, vault_master_key: MasterKey) -> None:
    here = replica(pool, vault_master_key)
    await here.partner()

    async def suspend_and_fail(uow: UnitOfWork) -> None:
        await suspend(uow)
        written = await uow.partners.get(PORTAL)
        assert written is not None
        assert written.status == "suspended"
        raise RuntimeError("the handler fails after the write")

    with pytest.raises(RuntimeError):
        await here.run(suspend_and_fail)
    assert (await here.partner()).active


async def test_a_change_another_replica_commits_arrives_by_notice(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    here, there = replica(pool, vault_master_key), replica(pool, vault_master_key)
    listener = LookupNotices(pool, here.cache, schema="registry", check_interval_s=0.2)
    stop = asyncio.Event()
    listening = asyncio.create_task(listener.run(stop))
    try:
        async with asyncio.timeout(10):
            await listener.listening.wait()
        assert (await here.key()).revoked_at is None
        assert (await here.partner()).active
        await there.run(revoke)
        await there.run(suspend)
        async with asyncio.timeout(10):
            while listener.notices < 2:  # a notice per committed change
                await asyncio.sleep(0.01)
        assert (await here.key()).revoked_at is not None
        assert (await here.partner()).status == "suspended"
    finally:
        stop.set()
        await asyncio.wait_for(listening, 10)


async def test_unannounced_a_change_elsewhere_is_read_once_the_entry_is_as_old_as_the_ttl(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    """The bound when no notice arrives (this replica's listener reconnecting)."""
    clock = Clock()
    here, there = replica(pool, vault_master_key, clock), replica(pool, vault_master_key)
    assert (await here.partner()).active
    await there.run(suspend)
    clock.now += TTL_S - 0.001
    assert (await here.partner()).active
    clock.now += 0.001
    assert (await here.partner()).status == "suspended"
