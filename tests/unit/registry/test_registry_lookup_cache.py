"""The registry's cache of what rarely changes: held until invalidated or too old, never filled
with what a change may have overtaken, and held off while a change is not yet settled.

The clock is the test's: entries age only when the test moves it.
"""

from __future__ import annotations

import pytest

from hub.runtime.messages import RecordingEmitter
from services.registry.adapters.postgres.cached import UnitLookups
from services.registry.lookups import LookupCache

pytestmark = pytest.mark.asyncio

TTL_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Table:
    """A row the cache reads through ``load``, counting the reads."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0

    async def load(self) -> str:
        self.reads += 1
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> LookupCache:
    return LookupCache(ttl_s=TTL_S, clock=clock)


async def test_a_value_is_read_once_and_then_held(cache: LookupCache) -> None:
    table = Table("active")
    assert [await cache.fetch("partner", table.load) for _ in range(3)] == ["active"] * 3
    assert table.reads == 1
    assert (cache.hits, cache.misses) == (2, 1)


async def test_after_an_invalidation_the_fresh_value_is_read(cache: LookupCache) -> None:
    table = Table("active")
    await cache.fetch("partner", table.load)
    table.value = "suspended"
    assert await cache.fetch("partner", table.load) == "active"  # held: nobody said it changed
    cache.invalidate()
    assert await cache.fetch("partner", table.load) == "suspended"
    assert table.reads == 2


async def test_an_entry_is_read_again_once_it_is_as_old_as_the_ttl(cache: LookupCache, clock: Clock) -> None:
    table = Table("active")
    await cache.fetch("partner", table.load)
    table.value = "suspended"  # changed where no notice reaches this cache
    clock.now += TTL_S - 0.001
    assert await cache.fetch("partner", table.load) == "active"
    clock.now += 0.001
    assert await cache.fetch("partner", table.load) == "suspended"
    assert table.reads == 2


async def test_a_ttl_of_zero_holds_nothing(clock: Clock) -> None:
    cache = LookupCache(ttl_s=0, clock=clock)
    table = Table("active")
    for _ in range(3):
        await cache.fetch("partner", table.load)
    assert table.reads == 3
    assert len(cache) == 0


async def test_a_value_read_while_an_invalidation_arrived_is_not_held(cache: LookupCache) -> None:
    """The read may have seen the row before the change whose notice came meanwhile."""
    table = Table("active")

    async def read_overtaken_by_a_change() -> str:
        value = await table.load()
        table.value = "suspended"
        cache.invalidate()  # the change's notice, while the old row was on its way
        return value

    assert await cache.fetch("partner", read_overtaken_by_a_change) == "active"
    assert await cache.fetch("partner", table.load) == "suspended"


async def test_while_a_change_is_unsettled_nothing_is_served_or_held(cache: LookupCache) -> None:
    table = Table("active")
    await cache.fetch("key", table.load)
    change = cache.change_started()
    table.value = "revoked"  # committed, but the committer has not yet said so
    assert await cache.fetch("key", table.load) == "revoked"
    assert await cache.fetch("key", table.load) == "revoked"
    assert table.reads == 3
    cache.change_settled(change)
    assert await cache.fetch("key", table.load) == "revoked"
    assert await cache.fetch("key", table.load) == "revoked"
    assert table.reads == 4  # held again once settled


async def test_a_change_that_never_settles_holds_the_cache_off_for_a_ttl_only(
    cache: LookupCache, clock: Clock
) -> None:
    """A rolled-back unit of work never says so: its change stops counting after the TTL."""
    table = Table("active")
    cache.change_started()
    await cache.fetch("key", table.load)
    clock.now += TTL_S
    await cache.fetch("key", table.load)
    await cache.fetch("key", table.load)
    assert table.reads == 2


async def test_the_oldest_entries_go_first_beyond_the_bound(clock: Clock) -> None:
    cache = LookupCache(ttl_s=TTL_S, clock=clock, max_entries=2)
    tables = {name: Table(name) for name in ("a", "b", "c")}
    for name, table in tables.items():
        await cache.fetch(name, table.load)
    assert len(cache) == 2
    await cache.fetch("c", tables["c"].load)
    await cache.fetch("b", tables["b"].load)
    await cache.fetch("a", tables["a"].load)
    assert [table.reads for table in tables.values()] == [2, 1, 1]


async def test_a_unit_of_work_that_wrote_reads_its_own_transaction_and_settles_on_commit(
    cache: LookupCache, clock: Clock
) -> None:
    table = Table("active")
    await cache.fetch("partner", table.load)
    emitter = RecordingEmitter(source="urn:test")
    unit = UnitLookups(cache, emitter)
    unit.writing()
    table.value = "suspended"  # written in the unit's transaction
    clock.now += 2 * TTL_S  # a long transaction: its change no longer holds the cache off
    assert await unit.read("partner", table.load) == "suspended"
    generation = cache.generation
    emitter.committed()
    assert cache.generation == generation + 1
    other = UnitLookups(cache, RecordingEmitter(source="urn:test"))
    assert await other.read("partner", table.load) == "suspended"


async def test_a_unit_of_work_that_only_read_leaves_the_cache_as_it_was(cache: LookupCache) -> None:
    table = Table("active")
    emitter = RecordingEmitter(source="urn:test")
    unit = UnitLookups(cache, emitter)
    await unit.read("partner", table.load)
    await unit.read("partner", table.load)
    emitter.committed()
    assert await cache.fetch("partner", table.load) == "active"
    assert table.reads == 1
