"""Partners, the catalogue, subscriptions, partners' keys and the audit chain in memory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from hub.audit.chain import GENESIS_HASH, AuditEntry, AuditKey, seal_next
from services.registry.adapters.memory.state import MemoryState
from services.registry.model import (
    CatalogEntry,
    Partner,
    PartnerKey,
    Subscribed,
    SubscriptionRecord,
)
from services.registry.parties_domain import Candidate
from services.registry.subscriptions_domain import Subscription


class MemoryPartners:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def get(self, partner_id: str) -> Partner | None:
        return self._state.partners.get(partner_id)

    async def put(self, partner: Partner) -> None:
        self._state.partners[partner.partner_id] = partner

    async def set_status(self, partner_id: str, status: str) -> None:
        if (partner := self._state.partners.get(partner_id)) is not None:
            self._state.partners[partner_id] = replace(partner, status=status)

    async def candidates(self, roles: Iterable[str]) -> list[Candidate]:
        wanted = set(roles)
        return [_candidate(p) for _, p in sorted(self._state.partners.items()) if wanted & set(p.roles)]

    async def candidate(self, partner_id: str) -> Candidate | None:
        partner = self._state.partners.get(partner_id)
        return None if partner is None else _candidate(partner)


def _candidate(partner: Partner) -> Candidate:
    return Candidate(partner.partner_id, partner.roles, partner.jurisdiction, partner.active)


class MemoryCatalogue:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def entry(self, event_type: str) -> CatalogEntry | None:
        return self._state.catalogue.get(event_type)


class MemorySubscriptions:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def to(self, event_type: str, case_type: str) -> list[Subscribed]:
        found = []
        for sequence, s in self._state.subscriptions.values():
            partner = self._state.partners.get(s.partner_id)
            if (
                s.event_type == event_type
                and s.case_type in (None, case_type)
                and s.status == "approved"
                and partner is not None
                and partner.active
            ):
                subscription = Subscription(s.partner_id, s.purpose, s.legal_basis, s.fields, s.scope, s.slot)
                found.append(
                    (
                        (s.partner_id, sequence),
                        Subscribed(subscription, partner.sector, partner.delivery_topic),
                    )
                )
        return [subscribed for _, subscribed in sorted(found, key=lambda pair: pair[0])]

    async def put(self, subscription: SubscriptionRecord) -> None:
        s = subscription
        key = (s.partner_id, s.event_type, s.case_type or "", s.slot or "")
        existing = self._state.subscriptions.get(key)
        sequence = existing[0] if existing is not None else self._state.next_id()
        self._state.subscriptions[key] = (sequence, s)


class MemoryPartnerKeys:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def find(self, key_id: str) -> PartnerKey | None:
        return self._state.partner_keys.get(key_id)

    async def register(self, key: PartnerKey) -> None:
        known = self._state.partner_keys.get(key.key_id)
        revoked_at = known.revoked_at if known is not None else None
        self._state.partner_keys[key.key_id] = replace(key, revoked_at=revoked_at)

    async def revoke(self, key_id: str, revoked_at: dt.datetime) -> None:
        known = self._state.partner_keys.get(key_id)
        if known is not None and known.revoked_at is None:
            self._state.partner_keys[key_id] = replace(known, revoked_at=revoked_at)


class MemoryAuditLog:
    def __init__(self, state: MemoryState, key: AuditKey, clock: Callable[[], dt.datetime]) -> None:
        self._state, self._key, self._clock = state, key, clock

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        chain = self._state.audit
        recorded_at = self._clock()
        for entry in entries:
            prev = chain[-1].entry_hash if chain else GENESIS_HASH
            chain.append(
                seal_next(self._key, entry, seq=len(chain) + 1, prev_hash=prev, recorded_at=recorded_at)
            )
