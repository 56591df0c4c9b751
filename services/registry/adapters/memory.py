"""The registry in memory: the same ports as the PostgreSQL adapter, in dicts and lists.

For handler tests without a database: ``MemoryRegistry`` keeps the state every unit of work
it builds shares, a vault of its own (a ring per person; destroying it makes what was
sealed under it read as erased, as destroyed data keys do) and the audit chain, sealed for
real under a test key. ``tests/contract/registry`` holds it to the PostgreSQL adapter's
behaviour.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from contracts.classification import merge
from hub.audit.chain import GENESIS_HASH, AuditEntry, AuditKey, SealedEntry, seal_next
from hub.runtime.messages import Emitter
from services.erasure import StoreReport
from services.registry.adapters.classified import halves
from services.registry.case_domain import Case
from services.registry.domain import FINAL_STATUSES, CaseStatus
from services.registry.errors import PersonErased
from services.registry.model import (
    CatalogEntry,
    NewCase,
    OpenSlot,
    Partner,
    PartnerKey,
    PendingDelivery,
    RecordedStep,
    Subscribed,
    SubscriptionRecord,
    TimelineStep,
)
from services.registry.parties_domain import Candidate, Party
from services.registry.ports import Transactional, Work
from services.registry.subscriptions_domain import Subscription

T = TypeVar("T")
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


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MemoryCases:
    def __init__(self, state: MemoryState, clock: Callable[[], dt.datetime]) -> None:
        self._state, self._clock = state, clock

    async def add(self, case: NewCase) -> bool:
        vault = self._state.vault
        ref = (
            vault.subject_ref(case.subject_vn)
            if case.subject_vn is not None
            else vault.case_ref(case.case_id)
        )
        ring = vault.key_for(ref)
        if ring in vault.destroyed:
            raise PersonErased(
                f"case {case.case_id} belongs to an erased person: nothing more is stored for it"
            )
        if case.case_id in self._state.cases:
            return False
        readable, protected = halves(case.details_type, case.details)
        self._state.cases[case.case_id] = CaseRow(
            case_id=case.case_id,
            case_type=case.case_type,
            status=CaseStatus.OPENED,
            trace_id=case.trace_id,
            traceparent=case.traceparent,
            test_delivery=case.test_delivery,
            reported_event_id=case.reported_event_id,
            readable=copy.deepcopy(readable),
            sealed=vault.seal(ring, protected),
            deadline_at=self._clock() + dt.timedelta(seconds=case.deadline_s),
        )
        vault.bind(vault.case_ref(case.case_id), ring)
        return True

    async def get(self, case_id: str, *, for_update: bool = False) -> Case | None:
        row = self._state.cases.get(case_id)
        return None if row is None else self._case(row)

    async def exists(self, case_id: str) -> bool:
        return case_id in self._state.cases

    async def claim_overdue(self, limit: int) -> list[tuple[Case, str | None]]:
        now = self._clock()
        overdue = sorted(
            (
                row
                for row in self._state.cases.values()
                if row.status in (CaseStatus.OPENED, CaseStatus.IN_PROGRESS) and row.deadline_at < now
            ),
            key=lambda row: row.deadline_at,
        )
        return [(self._case(row), row.traceparent) for row in overdue[:limit]]

    async def set_status(self, case_id: str, status: CaseStatus) -> None:
        if (row := self._state.cases.get(case_id)) is not None:
            row.status = status
            row.closed_at = self._clock() if status in FINAL_STATUSES else None

    async def set_citizen_id(self, case_id: str, citizen_id: str) -> None:
        if (row := self._state.cases.get(case_id)) is not None:
            row.citizen_id = citizen_id

    async def add_milestone(self, case_id: str, milestone: str, partner_id: str, event_id: str) -> None:
        self._state.milestones.setdefault(case_id, {}).setdefault(milestone, (partner_id, event_id))

    def _case(self, row: CaseRow) -> Case:
        erased = self._state.vault.erased(row.sealed)
        details = (
            copy.deepcopy(row.readable) if erased else merge(row.readable, copy.deepcopy(row.sealed.value))
        )
        return Case(
            case_id=row.case_id,
            case_type=row.case_type,
            status=row.status,
            trace_id=row.trace_id,
            test_delivery=row.test_delivery,
            reported_event_id=row.reported_event_id,
            details=details,
            deadline_at=row.deadline_at,
            citizen_id=row.citizen_id,
            erased=erased,
            parties=tuple(self._state.parties.get(row.case_id, ())),
            milestones=frozenset(self._state.milestones.get(row.case_id, {})),
        )


class MemoryTimeline:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def add(self, step: TimelineStep) -> None:
        sealed = None
        if step.confidential is not None:
            vault = self._state.vault
            sealed = vault.seal(vault.key_for(vault.case_ref(step.case_id)), step.confidential)
        entry = replace(step, confidential=None)
        self._state.timeline.append(TimelineRow(self._state.next_id(), entry, sealed))

    async def of_case(self, case_id: str) -> list[RecordedStep]:
        steps = []
        for row in self._state.timeline:
            if row.step.case_id != case_id:
                continue
            erased = row.sealed is not None and self._state.vault.erased(row.sealed)
            text = None if row.sealed is None or erased else row.sealed.value
            s = row.step
            steps.append(
                RecordedStep(s.service, s.event_type, s.event_id, s.trace_id, s.detail, text, erased)
            )
        return steps


class MemoryPending:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def add(self, pending: PendingDelivery) -> None:
        vault = self._state.vault
        ring = vault.key_for(vault.case_ref(pending.case_id))
        if ring in vault.destroyed:
            raise PersonErased(
                f"case {pending.case_id} belongs to an erased person: nothing more is stored for it"
            )
        readable, protected = halves(pending.event_type, pending.data)
        self._state.pending[pending.request_id] = PendingRow(
            replace(pending, data={}), copy.deepcopy(readable), vault.seal(ring, protected)
        )

    async def take(self, request_id: str) -> PendingDelivery | None:
        row = self._state.pending.pop(request_id, None)
        if row is None or self._state.vault.erased(row.sealed):
            return None
        return replace(row.pending, data=merge(row.readable, copy.deepcopy(row.sealed.value)))


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


class MemoryCaseParties:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def add(self, case_id: str, parties: Sequence[Party]) -> None:
        self._state.parties[case_id] = list(parties)

    async def open_slots_needing(self, candidate: Candidate) -> list[OpenSlot]:
        if candidate.jurisdiction is None:
            return []
        found = []
        for case_id in sorted(self._state.parties):
            case = self._state.cases[case_id]
            if case.status not in OPEN_STATUSES:
                continue
            for party in self._state.parties[case_id]:
                if (
                    party.partner_id is None
                    and party.role in candidate.roles
                    and party.jurisdiction == candidate.jurisdiction
                ):
                    found.append(OpenSlot(case_id, case.case_type, case.trace_id, party))
        return found

    async def fill(self, case_id: str, slot: str, partner_id: str) -> None:
        self._change(case_id, slot, partner_id=partner_id, unfilled_reason=None)

    async def set_unfilled_reason(self, case_id: str, slot: str, reason: str) -> None:
        self._change(case_id, slot, unfilled_reason=reason)

    def _change(self, case_id: str, slot: str, **changes: Any) -> None:
        parties = self._state.parties.get(case_id, [])
        for position, party in enumerate(parties):
            if party.slot == slot and party.partner_id is None:
                parties[position] = replace(party, **changes)


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


@dataclass
class MemoryUnitOfWork:
    state: MemoryState
    emitter: Emitter
    audit_key: AuditKey = field(default=TEST_AUDIT_KEY, repr=False)
    clock: Callable[[], dt.datetime] = _utcnow

    def __post_init__(self) -> None:
        self.cases = MemoryCases(self.state, self.clock)
        self.timeline = MemoryTimeline(self.state)
        self.pending = MemoryPending(self.state)
        self.partners = MemoryPartners(self.state)
        self.catalogue = MemoryCatalogue(self.state)
        self.subscriptions = MemorySubscriptions(self.state)
        self.parties = MemoryCaseParties(self.state)
        self.partner_keys = MemoryPartnerKeys(self.state)
        self.audit = MemoryAuditLog(self.state, self.audit_key, self.clock)


@dataclass
class MemoryRegistry:
    """The registry's state in memory, and the units of work over it."""

    state: MemoryState = field(default_factory=MemoryState)
    audit_key: AuditKey = field(default=TEST_AUDIT_KEY, repr=False)
    clock: Callable[[], dt.datetime] = _utcnow

    def unit_of_work(self, emitter: Emitter) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.state, emitter, self.audit_key, self.clock)

    def transactional(self, emitter: Emitter) -> Transactional:
        """Each call runs its work on the shared state; if the work raises, the state is put
        back as it was and nothing it emitted stays, as a rolled-back transaction."""

        async def run(work: Work[T]) -> T:
            before, emitted = copy.deepcopy(self.state), len(emitter.emitted)
            try:
                return await work(self.unit_of_work(emitter))
            except BaseException:
                self.state.__dict__.update(before.__dict__)
                del emitter.emitted[emitted:]
                raise

        return run

    def erasure(self) -> MemoryRegistryErasure:
        return MemoryRegistryErasure(self.state)


class MemoryRegistryErasure:
    """``services.erasure.PersonErasure`` over the in-memory registry."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        return {
            row.citizen_id
            for case_id in case_ids
            if (row := self._state.cases.get(case_id)) is not None and row.citizen_id is not None
        }

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        wanted = set(case_ids)
        cases = sum(1 for case_id in wanted if case_id in self._state.cases)
        pending = sum(1 for row in self._state.pending.values() if row.pending.case_id in wanted)
        timeline = sum(
            1 for row in self._state.timeline if row.step.case_id in wanted and row.sealed is not None
        )
        return [
            StoreReport("registry.cases", UNREADABLE, cases),
            StoreReport("registry.pending_deliveries", UNREADABLE, pending),
            StoreReport("registry.timeline", UNREADABLE, timeline),
        ]
