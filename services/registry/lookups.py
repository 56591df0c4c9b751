"""The registry's memory of what rarely changes: partners, their keys, subscriptions, the catalogue.

Every partner event and every delivery looks these up; they change only when an operator
or identity says so (a partner registered, suspended or reactivated, a key added or
revoked, a subscription set, a migration's catalogue). One ``LookupCache`` per service
runtime (``services.registry.bootstrap``) holds what its units of work read, and three
things drop it:

- a change committed in this process: the unit of work that wrote it invalidates on
  commit (``Emitter.after_commit``). From the first write of such a unit of work until its
  outcome is known, nobody fills or trusts the cache: a key revoked here is never used
  after its revocation is committed, not even in the moment between the database's commit
  and the callback;
- a change committed anywhere else (another replica: each admin event reaches one
  replica of a consumer group only, an operator's SQL, a migration): the tables' trigger
  notifies, the listener (``adapters/postgres/lookup_notices.py``) invalidates, within the
  notification's latency;
- age: an entry older than ``ttl_s`` is read again, the bound when the listener is down
  (the database restarting) or a notification is lost.

Only register data is held: partners are organisations, keys are public keys, and nothing
of a case or a citizen is ever cached (case parties, cases and timelines are always read
in the unit of work's transaction).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

V = TypeVar("V")

# A bound on entries, against lookups of names nobody registered (partner ids from the shared
# ingress, key ids from forged events): the oldest go first; they are read again if needed.
DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    value: Any
    expires_at: float


class LookupCache:
    """Values by key, each for at most ``ttl_s`` seconds of ``clock``; ``ttl_s`` 0 holds nothing.

    Not thread-safe, and needs not be: a service runtime's handlers share one event loop.
    """

    def __init__(
        self,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[Hashable, _Entry] = {}
        # Bumped by every invalidation: a value read from the database before it must not be
        # stored after it (it may predate the change that invalidated).
        self.generation = 0
        # Changes written but not yet known to be committed or rolled back, each with the time
        # after which it no longer holds the cache off (a rolled-back unit of work never says so).
        self._unsettled: dict[int, float] = {}
        self._change_ids = itertools.count(1)
        self.hits = 0
        self.misses = 0

    async def fetch(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        """The value held under ``key``, or ``load()``'s, held if nothing changed meanwhile."""
        now = self._clock()
        if self._ttl_s <= 0 or self._changing(now):
            self.misses += 1
            return await load()
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at > now:
            self.hits += 1
            value: V = entry.value
            return value
        self.misses += 1
        generation = self.generation
        value = await load()
        # The entry's age counts from before the read: what it holds is at least that old.
        if generation == self.generation and not self._changing(self._clock()):
            self._store(key, _Entry(value, now + self._ttl_s))
        return value

    def invalidate(self) -> None:
        """Forget everything: the next lookup of each key reads the database."""
        self._entries.clear()
        self.generation += 1

    def change_started(self) -> int:
        """A unit of work is about to write what the cache holds: forget everything, and neither
        serve nor fill until ``change_settled`` with the returned id (or until ``ttl_s`` passed,
        for a unit of work that rolled back and so never settles)."""
        change = next(self._change_ids)
        self._unsettled[change] = self._clock() + self._ttl_s
        self.invalidate()
        return change

    def change_settled(self, change: int) -> None:
        """The change committed: forget what was read while it was open."""
        self._unsettled.pop(change, None)
        self.invalidate()

    def __len__(self) -> int:
        return len(self._entries)

    def _changing(self, now: float) -> bool:
        if not self._unsettled:
            return False
        for change, until in list(self._unsettled.items()):
            if until <= now:
                del self._unsettled[change]
        return bool(self._unsettled)

    def _store(self, key: Hashable, entry: _Entry) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = entry
