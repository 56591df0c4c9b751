"""Units of work on a ``MemoryStore``, and notifications' part of an erasure there."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Collection

from hub.errors import DatabaseUnavailable
from hub.runtime.memory import MemoryTransactions
from hub.runtime.messages import Emitter, RecordingEmitter
from services.erasure import StoreReport
from services.notifications.adapters.memory.repositories import (
    MemoryInbox,
    MemoryNotifications,
    MemoryPreferences,
    MemoryWebhooks,
)
from services.notifications.adapters.memory.store import MemoryStore
from services.notifications.domain import UNREADABLE_AFTER_ERASURE


class MemoryUnitOfWork:
    """The stores of ``store`` and ``emitter``; a handler's test reads both afterwards."""

    def __init__(self, store: MemoryStore, emitter: Emitter) -> None:
        unit = store.next_unit()
        self.notifications = MemoryNotifications(store, unit)
        self.preferences = MemoryPreferences(store)
        self.inbox = MemoryInbox(store, unit)
        self.webhooks = MemoryWebhooks(store)
        self.emitter = emitter


class MemoryUnitsOfWork(MemoryTransactions[MemoryUnitOfWork]):
    """Units of work for workers: each rolls the store back if its block raises, and its
    events join ``emitter`` only if it commits."""

    store: MemoryStore

    def __init__(self, store: MemoryStore, emitter: RecordingEmitter) -> None:
        super().__init__(store, emitter, lambda own: MemoryUnitOfWork(store, own))

    @contextlib.asynccontextmanager
    async def on_due(self, wake: Callable[[], None]) -> AsyncIterator[None]:
        if self.store.unavailable:
            raise DatabaseUnavailable("the in-memory store is set unavailable")
        self.store._due_listeners.append(wake)
        try:
            yield
        finally:
            self.store._due_listeners.remove(wake)


class MemoryNotificationsErasure:
    """notifications' part of an erasure, on the in-memory store (``services.erasure``)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        state = self._store.state
        of_notices = {r.new.citizen_id for r in state.notices.values() if r.new.case_id in case_ids}
        of_inbox = {r.message.citizen_id for r in state.inbox.values() if r.message.case_id in case_ids}
        return {c for c in of_notices | of_inbox if c is not None}

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        state = self._store.state
        notices = sum(1 for r in state.notices.values() if r.new.case_id in case_ids)
        inbox = sum(1 for r in state.inbox.values() if r.message.case_id in case_ids)
        forgotten = [c for c in citizen_ids if c in state.preferences]
        for citizen_id in forgotten:
            del state.preferences[citizen_id]
        return [
            StoreReport("notifications.notifications", UNREADABLE_AFTER_ERASURE, notices),
            StoreReport("notifications.inbox_messages", UNREADABLE_AFTER_ERASURE, inbox),
            StoreReport("notifications.citizen_preferences", "deleted", len(forgotten)),
        ]
