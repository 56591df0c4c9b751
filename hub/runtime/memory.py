"""Units of work over an in-memory store, for a service's in-memory adapter.

Each unit rolls the store's state back if its block raises, and its events join the
shared emitter only if it commits: what a PostgreSQL transaction and its outbox rows do.
A store set ``unavailable`` refuses to open a unit, as a database that is away.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, Protocol, TypeVar

from hub.errors import DatabaseUnavailable
from hub.runtime.messages import Emitter, RecordingEmitter

U = TypeVar("U")


class MemoryStore(Protocol):
    state: Any
    unavailable: bool


class MemoryTransactions(Generic[U]):
    """``begin()`` opens a unit of work built by ``unit_of_work(emitter)`` over ``store``."""

    def __init__(
        self, store: MemoryStore, emitter: RecordingEmitter, unit_of_work: Callable[[Emitter], U]
    ) -> None:
        self.store, self.emitter, self._unit_of_work = store, emitter, unit_of_work

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[U]:
        if self.store.unavailable:
            raise DatabaseUnavailable("the in-memory store is set unavailable")
        before = copy.deepcopy(self.store.state)
        own = RecordingEmitter(source=self.emitter.source)
        unit = self._unit_of_work(own)
        try:
            yield unit
        except BaseException:
            self.store.state = before
            raise
        self.emitter.emitted.extend(own.emitted)
        own.committed()
