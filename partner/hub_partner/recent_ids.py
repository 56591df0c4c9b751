"""The ids of recently taken deliveries, to drop a delivery that arrives twice.

The hub delivers at least once: after a crash or a rebalance a delivery may come again, with
the same ``ce_id``. Remembering every id forever would grow without bound, so only the most
recent ``capacity`` are kept (least recently seen forgotten first). A repeat arrives soon after
the original (it is the same record read again, or a re-send from the hub's outbox), so a
window of some thousand ids catches it; the ids live in memory, so a restarted client may take
a repeat once more, which is why a partner's own processing should be idempotent too.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_CAPACITY = 10_000


class RecentIds:
    """A bounded set of ids that forgets the least recently seen first (an LRU)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def seen_before(self, event_id: str) -> bool:
        """Whether ``event_id`` was seen within the window; either way it is the most recent now."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return False
