"""The partner-side repositories with the service's ``LookupCache`` in front of their reads.

Same ports, same SQL underneath (``partners.py``): reads that every event repeats come
from the cache, writes go straight to the transaction. A unit of work that writes any of
these tables reads them from its own transaction from then on (its writes are not
committed, so not for the cache) and settles the cache when it commits
(``services.registry.lookups``). One invalidation covers all of them: routing joins
partners to subscriptions, and changes are rare enough that reading everything again
after one costs nothing that matters.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TypeVar

from hub.runtime.messages import Emitter
from services.registry.adapters.postgres.partners import (
    PostgresCatalogue,
    PostgresPartnerKeys,
    PostgresPartners,
    PostgresSubscriptions,
)
from services.registry.lookups import LookupCache
from services.registry.model import CatalogEntry, Partner, PartnerKey, Subscribed, SubscriptionRecord
from services.registry.parties_domain import Candidate

V = TypeVar("V")


class UnitLookups:
    """The cache as one unit of work uses it."""

    def __init__(self, cache: LookupCache, emitter: Emitter) -> None:
        self._cache, self._emitter = cache, emitter
        self._wrote = False

    async def read(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        if self._wrote:
            return await load()
        return await self._cache.fetch(key, load)

    def writing(self) -> None:
        """Called before each write, so that the cache is held off before the row changes."""
        if self._wrote:
            return
        self._wrote = True
        change = self._cache.change_started()
        self._emitter.after_commit(functools.partial(self._cache.change_settled, change))


class CachedPartners:
    def __init__(self, partners: PostgresPartners, lookups: UnitLookups) -> None:
        self._partners, self._lookups = partners, lookups

    async def get(self, partner_id: str) -> Partner | None:
        return await self._lookups.read(("partner", partner_id), lambda: self._partners.get(partner_id))

    async def put(self, partner: Partner) -> None:
        self._lookups.writing()
        await self._partners.put(partner)

    async def set_status(self, partner_id: str, status: str) -> None:
        self._lookups.writing()
        await self._partners.set_status(partner_id, status)

    async def candidates(self, roles: Iterable[str]) -> list[Candidate]:
        wanted = tuple(sorted(set(roles)))

        async def load() -> tuple[Candidate, ...]:
            return tuple(await self._partners.candidates(wanted))

        return list(await self._lookups.read(("candidates", wanted), load))

    async def candidate(self, partner_id: str) -> Candidate | None:
        # Asked only when a partner is registered or reactivated, in that very unit of work.
        return await self._partners.candidate(partner_id)


class CachedCatalogue:
    def __init__(self, catalogue: PostgresCatalogue, lookups: UnitLookups) -> None:
        self._catalogue, self._lookups = catalogue, lookups

    async def entry(self, event_type: str) -> CatalogEntry | None:
        return await self._lookups.read(("catalogue", event_type), lambda: self._catalogue.entry(event_type))


class CachedSubscriptions:
    def __init__(self, subscriptions: PostgresSubscriptions, lookups: UnitLookups) -> None:
        self._subscriptions, self._lookups = subscriptions, lookups

    async def to(self, event_type: str, case_type: str) -> list[Subscribed]:
        async def load() -> tuple[Subscribed, ...]:
            return tuple(await self._subscriptions.to(event_type, case_type))

        return list(await self._lookups.read(("subscribed", event_type, case_type), load))

    async def put(self, subscription: SubscriptionRecord) -> None:
        self._lookups.writing()
        await self._subscriptions.put(subscription)


class CachedPartnerKeys:
    def __init__(self, keys: PostgresPartnerKeys, lookups: UnitLookups) -> None:
        self._keys, self._lookups = keys, lookups

    async def find(self, key_id: str) -> PartnerKey | None:
        # The key's window is checked against each event's time (``hub.security.signing``):
        # holding the row does not stretch it.
        return await self._lookups.read(("partner-key", key_id), lambda: self._keys.find(key_id))

    async def register(self, key: PartnerKey) -> None:
        self._lookups.writing()
        await self._keys.register(key)

    async def revoke(self, key_id: str, revoked_at: dt.datetime) -> None:
        self._lookups.writing()
        await self._keys.revoke(key_id, revoked_at)
