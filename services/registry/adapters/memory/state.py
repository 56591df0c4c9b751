"""The in-memory registry's state: rows, and a vault of per-person key rings."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hub.audit.chain import AuditKey, SealedEntry
from services.registry.domain import CaseStatus
from services.registry.model import (
    CatalogEntry,
    Partner,
    PartnerKey,
    PendingDelivery,
    SubscriptionRecord,
    TimelineStep,
)
from services.registry.parties_domain import Party

TEST_AUDIT_KEY = AuditKey(b"memory-registry-audit-key-32-bytes!!")
OPEN_STATUSES = (CaseStatus.OPENED, CaseStatus.IN_PROGRESS, CaseStatus.ESCALATED)
UNREADABLE = "unreadable (sealed under a destroyed key)"


@dataclass(frozen=True)
class Sealed:
    """A value sealed under a ring's key; it reads as erased once the ring is destroyed."""

    ring: int
    value: Any


@dataclass
class MemoryVault:
    """References to per-person key rings, as ``hub.vault.store`` keeps them."""

    refs: dict[str, int] = field(default_factory=dict)
    destroyed: set[int] = field(default_factory=set)
    rings: int = 0

    @staticmethod
    def subject_ref(vn: str) -> str:
        return f"subject:{vn}"

    @staticmethod
    def case_ref(case_id: str) -> str:
        return f"case:{case_id}"

    def key_for(self, ref: str) -> int:
        if ref not in self.refs:
            self.rings += 1
            self.refs[ref] = self.rings
        return self.refs[ref]

    def bind(self, ref: str, ring: int) -> None:
        """``ref`` names ``ring`` too; if it named another ring, the two become one (erased if
        either was)."""
        other = self.refs.setdefault(ref, ring)
        if other == ring:
            return
        if other in self.destroyed or ring in self.destroyed:
            self.destroyed |= {ring, other}
        for name, member in self.refs.items():
            if member == ring:
                self.refs[name] = other

    def destroy(self, ref: str) -> None:
        """Crypto-shred the ring ``ref`` names. What identifies the person goes with it (the same
        AHVN13 later is a new person); case references stay, so a later event of such a case
        is recognised as erased."""
        if ref not in self.refs:
            return
        ring = self.refs[ref]
        self.destroyed.add(ring)
        for name, member in list(self.refs.items()):
            if member == ring and not name.startswith("case:"):
                del self.refs[name]

    def seal(self, ring: int, value: Any) -> Sealed:
        return Sealed(ring, None if ring in self.destroyed else copy.deepcopy(value))

    def erased(self, sealed: Sealed) -> bool:
        return sealed.ring in self.destroyed


@dataclass
class CaseRow:
    case_id: str
    case_type: str
    status: CaseStatus
    trace_id: str
    traceparent: str | None
    test_delivery: bool
    reported_event_id: str
    readable: dict[str, Any]
    sealed: Sealed
    deadline_at: dt.datetime
    citizen_id: str | None = None
    closed_at: dt.datetime | None = None
    opened_at: dt.datetime | None = None


@dataclass
class TimelineRow:
    entry_id: int
    step: TimelineStep
    sealed: Sealed | None


@dataclass
class PendingRow:
    pending: PendingDelivery
    readable: dict[str, Any]
    sealed: Sealed


@dataclass
class MemoryState:
    """Everything the registry stores; each unit of work reads and writes it directly."""

    partners: dict[str, Partner] = field(default_factory=dict)
    catalogue: dict[str, CatalogEntry] = field(default_factory=dict)
    subscriptions: dict[tuple[str, str, str, str], tuple[int, SubscriptionRecord]] = field(
        default_factory=dict
    )
    cases: dict[str, CaseRow] = field(default_factory=dict)
    milestones: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    parties: dict[str, list[Party]] = field(default_factory=dict)
    timeline: list[TimelineRow] = field(default_factory=list)
    pending: dict[str, PendingRow] = field(default_factory=dict)
    partner_keys: dict[str, PartnerKey] = field(default_factory=dict)
    audit: list[SealedEntry] = field(default_factory=list)
    vault: MemoryVault = field(default_factory=MemoryVault)
    last_id: int = 0

    def next_id(self) -> int:
        """Timeline entries and subscriptions are numbered in the order they are written."""
        self.last_id += 1
        return self.last_id


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
