"""The notifications service in memory: the same ports as PostgreSQL, on dicts and lists.

For unit tests of handlers and workers, and as the reference the contract suite holds the
PostgreSQL adapter to. Nothing is sealed here; what the vault does is modelled by
``MemoryStore.erase_case``: from then on the case's notices and inbox messages read as
erased, as they do once the vault has destroyed their person's key. Time comes from
``clock`` (seconds), so a test can move it on instead of sleeping.
"""

from __future__ import annotations

from services.notifications.adapters.memory.repositories import (
    MemoryInbox,
    MemoryNotifications,
    MemoryPreferences,
    MemoryWebhooks,
)
from services.notifications.adapters.memory.store import ManualClock, MemoryStore
from services.notifications.adapters.memory.units import (
    MemoryNotificationsErasure,
    MemoryUnitOfWork,
    MemoryUnitsOfWork,
)

__all__ = [
    "ManualClock",
    "MemoryInbox",
    "MemoryNotifications",
    "MemoryNotificationsErasure",
    "MemoryPreferences",
    "MemoryStore",
    "MemoryUnitOfWork",
    "MemoryUnitsOfWork",
    "MemoryWebhooks",
]
