"""Writes that arrive together go to the database together.

Many notices finish at about the same time when several cases are sent at once; a
transaction each would make the database, not the mail relay, the limit. A ``WriteBatcher``
writes whatever was submitted while its earlier writes ran in one call (so one
transaction), and each submitter learns the fate of the write that carried its item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class WriteBatcher(Generic[T]):
    def __init__(
        self, write: Callable[[Sequence[T]], Awaitable[None]], *, concurrent_writes: int = 1
    ) -> None:
        """``write`` stores the items in one unit of work: all of them, or none (it raises).
        Up to ``concurrent_writes`` run at once: a commit waits for the disk, and the items
        arriving meanwhile need not wait for it to start theirs."""
        self._write, self._concurrent_writes = write, concurrent_writes
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> None:
        """Returns once a write carrying ``item`` committed; raises what that write raised."""
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((item, written))
        if len(self._writers) < self._concurrent_writes:
            writer = asyncio.create_task(self._write_while_waiting())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        # Shielded: a submitter cancelled meanwhile does not cancel the write of the others.
        await asyncio.shield(written)

    async def _write_while_waiting(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                # Submitters that finish in this turn of the event loop join the same write.
                await asyncio.sleep(0)
                batch, self._waiting = self._waiting, []
                if not batch:
                    return  # another writer took them
                try:
                    await self._write([item for item, _ in batch])
                except Exception as error:
                    for _, written in batch:
                        if not written.done():
                            written.set_exception(error)
                            written.exception()  # a submitter cancelled meanwhile never reads it
                else:
                    for _, written in batch:
                        if not written.done():
                            written.set_result(None)
                batch = []
        except BaseException:
            # The writer itself is cancelled (the process shuts down): nobody is left waiting.
            for _, written in [*batch, *self._waiting]:
                written.cancel()
            self._waiting = []
            raise
