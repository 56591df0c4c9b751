"""What the registry's handlers need from storage, as typed ports: no connection anywhere.

``adapters/postgres`` implements them over the handler's transaction, ``adapters/memory``
in dicts and lists; ``tests/contract/registry`` holds both to the same behaviour. A
handler is a plain async function ``(msg, uow, **deps)``: it reads and writes through the
unit of work's repositories and emits through its ``emitter``, and everything it did
commits together, or nothing does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from hub.audit.chain import AuditEntry
from hub.runtime.messages import Emitter
from services.registry.case_domain import Case
from services.registry.domain import CaseStatus
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

T = TypeVar("T")


class CaseRepository(Protocol):
    async def add(self, case: NewCase) -> bool:
        """Store a new case, its details sealed under its person's key; False if the id exists.
        ``PersonErased`` if that person's key is destroyed."""
        ...

    async def get(self, case_id: str, *, for_update: bool = False) -> Case | None:
        """The case with its parties and reached milestones; ``for_update`` locks it until
        the unit of work ends, so that concurrent steps on one case take turns."""
        ...

    async def exists(self, case_id: str) -> bool: ...

    async def claim_overdue(self, limit: int) -> list[tuple[Case, str | None]]:
        """Open cases past their deadline, each with the traceparent it was opened under,
        locked so that one registry escalates each once."""
        ...

    async def set_status(self, case_id: str, status: CaseStatus) -> None: ...

    async def set_citizen_id(self, case_id: str, citizen_id: str) -> None: ...

    async def add_milestone(self, case_id: str, milestone: str, partner_id: str, event_id: str) -> None:
        """Recorded once: a milestone reached again keeps its first partner and event."""
        ...


class Timeline(Protocol):
    async def add(self, step: TimelineStep) -> None:
        """``step.confidential`` is sealed under the case's key (not stored at all once the
        person is erased: it reads as erased)."""
        ...

    async def of_case(self, case_id: str) -> list[RecordedStep]:
        """The case's steps in the order they were added."""
        ...


class PendingDeliveries(Protocol):
    async def add(self, pending: PendingDelivery) -> None:
        """Sealed under the case's key; ``PersonErased`` if it is destroyed."""
        ...

    async def take(self, request_id: str) -> PendingDelivery | None:
        """The waiting event, removed; None if there is none, or if its person was erased
        meanwhile (nothing is left to deliver)."""
        ...


class PartnerDirectory(Protocol):
    """The registry's mirror of identity's partner register."""

    async def get(self, partner_id: str) -> Partner | None: ...

    async def put(self, partner: Partner) -> None:
        """Insert the partner or replace what the registry knows of it."""
        ...

    async def set_status(self, partner_id: str, status: str) -> None: ...

    async def candidates(self, roles: Iterable[str]) -> list[Candidate]:
        """Every partner holding one of ``roles``, active or not (the rules decide), by id."""
        ...

    async def candidate(self, partner_id: str) -> Candidate | None: ...


class Catalogue(Protocol):
    async def entry(self, event_type: str) -> CatalogEntry | None: ...


class Subscriptions(Protocol):
    async def to(self, event_type: str, case_type: str) -> list[Subscribed]:
        """Approved subscriptions of active partners to ``event_type`` for ``case_type`` (or
        naming no case type), by partner and in the order they were first set. Routing
        narrows them to a case's parties (``parties.recipients``)."""
        ...

    async def put(self, subscription: SubscriptionRecord) -> None:
        """One per partner, type, case type and slot: the same four replace it."""
        ...


class CaseParties(Protocol):
    async def add(self, case_id: str, parties: Sequence[Party]) -> None: ...

    async def open_slots_needing(self, candidate: Candidate) -> list[OpenSlot]:
        """Unfilled slots of open cases that ``candidate``'s roles and exact jurisdiction would
        fill (by case id, then slot order), locked with their case."""
        ...

    async def fill(self, case_id: str, slot: str, partner_id: str) -> None:
        """Only an unfilled slot is filled."""
        ...

    async def set_unfilled_reason(self, case_id: str, slot: str, reason: str) -> None: ...


class PartnerKeys(Protocol):
    async def find(self, key_id: str) -> PartnerKey | None: ...

    async def register(self, key: PartnerKey) -> None:
        """Insert the key or update its owner, material and window; a revocation stays."""
        ...

    async def revoke(self, key_id: str, revoked_at: dt.datetime) -> None:
        """The first revocation's time stands when the announcement is repeated."""
        ...


class AuditLog(Protocol):
    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Sealed onto the hash chain in the unit of work: they commit with what they record."""
        ...


class CaseFigures(Protocol):
    """What operations count about cases (/metrics); counted once the unit of work commits."""

    def case_completed(self, case_type: str, seconds: float) -> None:
        """A case completed ``seconds`` after it was opened."""
        ...

    def case_escalated(self, case_type: str) -> None:
        """A case missed its deadline and was escalated."""
        ...


class UnitOfWork(Protocol):
    """Everything one handler call may touch; it commits as a whole, or not at all."""

    @property
    def cases(self) -> CaseRepository: ...
    @property
    def timeline(self) -> Timeline: ...
    @property
    def pending(self) -> PendingDeliveries: ...
    @property
    def partners(self) -> PartnerDirectory: ...
    @property
    def catalogue(self) -> Catalogue: ...
    @property
    def subscriptions(self) -> Subscriptions: ...
    @property
    def parties(self) -> CaseParties: ...
    @property
    def partner_keys(self) -> PartnerKeys: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def figures(self) -> CaseFigures: ...
    @property
    def emitter(self) -> Emitter: ...


# Runs ``work`` in a unit of work of its own that commits when it returns (workers: the
# escalation loop); a database outage comes out as ``hub.errors.DatabaseUnavailable``.
Work = Callable[[UnitOfWork], Awaitable[T]]


class Transactional(Protocol):
    async def __call__(self, work: Work[T]) -> T: ...
