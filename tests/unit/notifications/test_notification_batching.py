"""Writes submitted together go to the database together, and each submitter learns their fate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.notifications.batching import WriteBatcher

pytestmark = pytest.mark.asyncio


class Store:
    def __init__(self, *, seconds_per_write: float = 0.0) -> None:
        self.writes: list[list[int]] = []
        self.failing = False
        self.under_way = self.most_under_way = 0
        self._seconds = seconds_per_write

    async def write(self, items: Sequence[int]) -> None:
        self.under_way += 1
        self.most_under_way = max(self.most_under_way, self.under_way)
        try:
            await asyncio.sleep(self._seconds)
            if self.failing:
                raise ConnectionError("database restarted")
            self.writes.append(list(items))
        finally:
            self.under_way -= 1


async def test_items_submitted_at_the_same_time_are_written_in_one_write() -> None:
    store = Store()
    batcher = WriteBatcher[int](store.write)
    await asyncio.gather(*(batcher.submit(n) for n in range(10)))
    assert store.writes == [list(range(10))]


async def test_items_arriving_during_a_write_go_in_the_next_one() -> None:
    store = Store(seconds_per_write=0.05)
    batcher = WriteBatcher[int](store.write)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first write is under way
    await asyncio.gather(first, *(batcher.submit(n) for n in range(1, 4)))
    assert store.writes == [[0], [1, 2, 3]]


async def test_no_more_writes_run_at_once_than_allowed() -> None:
    store = Store(seconds_per_write=0.02)
    batcher = WriteBatcher[int](store.write, concurrent_writes=2)
    submitted = []
    for n in range(6):
        submitted.append(asyncio.create_task(batcher.submit(n)))
        await asyncio.sleep(0.005)  # each arrives while earlier writes are under way
    await asyncio.gather(*submitted)
    assert store.most_under_way == 2
    assert sorted(n for write in store.writes for n in write) == list(range(6))


async def test_a_failed_write_raises_in_every_submitter_it_carried_and_the_next_one_is_fresh() -> None:
    store = Store()
    store.failing = True
    batcher = WriteBatcher[int](store.write)
    results = await asyncio.gather(*(batcher.submit(n) for n in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError] * 3
    store.failing = False
    await batcher.submit(7)
    assert store.writes == [[7]]


async def test_a_cancelled_submitter_does_not_cancel_the_write_of_the_others() -> None:
    store = Store(seconds_per_write=0.05)
    batcher = WriteBatcher[int](store.write)
    cancelled = asyncio.create_task(batcher.submit(1))
    kept = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await kept
    assert store.writes == [[1, 2]]
