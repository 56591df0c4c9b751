"""The case aggregate: who may act on a case and what each step does to it; no I/O.

A handler loads a ``Case`` through its unit of work (with its parties and the milestones
reached so far), asks it, stores what changed and emits. The checks keep their order:
first who sends (the catalogue and the role), then whether the sender is the party the
step needs (``NotAParty``), then whether the case is still open (``CaseAlreadyFinal``);
nothing changes before all of them passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.registry.domain import FINAL_STATUSES, CaseStatus, Milestone, ProcessDefinition, next_status
from services.registry.errors import CaseAlreadyFinal, NotAParty, NotAuthorized
from services.registry.model import CatalogEntry, Partner
from services.registry.parties_domain import (
    Candidate,
    Party,
    may_reject,
    may_request_action,
    milestones_reached,
    not_a_party,
    required_milestones,
    resolve_parties,
)


def check_sender(partner: Partner | None, claimed: str) -> Partner:
    """The partner an event claims to come from, if it is known and active."""
    if partner is None:
        raise NotAuthorized(f"unknown partner {claimed}")
    if not partner.active:
        raise NotAuthorized(f"partner {partner.partner_id} is {partner.status}")
    return partner


def check_may_publish(partner: Partner, entry: CatalogEntry | None, event_type: str) -> None:
    """The catalogue knows the type, and one of the sender's roles may publish it."""
    if entry is None:
        raise NotAuthorized(f"{event_type} is not in the catalogue")
    if not set(partner.roles) & set(entry.publisher_roles):
        raise NotAuthorized(
            f"{partner.partner_id} (roles {', '.join(partner.roles)}) may not publish {entry.event_type}"
        )


def check_may_open(partner: Partner, process: ProcessDefinition) -> None:
    """Opening is a matter of role: the portal opens moves whatever the municipalities."""
    if partner.roles and process.opened_by.role not in partner.roles:
        raise NotAuthorized(f"{partner.partner_id} may not open a {process.case_type} case")


@dataclass
class Case:
    """One case: its state, its parties (resolved when it opened) and the milestones reached."""

    case_id: str
    case_type: str
    status: CaseStatus
    trace_id: str
    test_delivery: bool
    reported_event_id: str
    details: dict[str, Any]
    deadline_at: dt.datetime | None
    citizen_id: str | None = None
    # The person's data key is destroyed: ``details`` holds only public and internal fields.
    erased: bool = False
    parties: tuple[Party, ...] = ()
    milestones: frozenset[str] = field(default_factory=frozenset)
    opened_at: dt.datetime | None = None

    def age_s(self, now: dt.datetime) -> float | None:
        """Seconds since the case was opened (its latency, when it completes now)."""
        return None if self.opened_at is None else (now - self.opened_at).total_seconds()

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def ensure_open(self) -> None:
        if self.final:
            raise CaseAlreadyFinal(f"case {self.case_id} is already {self.status}")

    def resolve_parties(
        self, process: ProcessDefinition, *, opener: Partner, partners: Sequence[Candidate]
    ) -> tuple[Party, ...]:
        """The case's parties from its opening data and the register (``parties_domain``)."""
        self.parties = resolve_parties(
            process,
            self.details,
            opener=Candidate(opener.partner_id, opener.roles, opener.jurisdiction, opener.active),
            partners=partners,
        )
        return self.parties

    def milestones_of(
        self, process: ProcessDefinition, event_type: str, partner_id: str
    ) -> tuple[Milestone, ...]:
        """The milestones an event of ``event_type`` from ``partner_id`` reaches (one, unless the
        sender fills two slots whose milestones share the type); ``NotAParty`` if none."""
        reached = milestones_reached(process, self.parties, event_type, partner_id)
        if not reached:
            slots = [m.slot for m in process.milestones_of_type(event_type)]
            raise NotAParty(not_a_party(partner_id, self.case_type, slots, event_type))
        return reached

    def reach(self, process: ProcessDefinition, reached: Sequence[Milestone]) -> bool:
        """Record ``reached``; the case completes once every milestone of a slot that applies
        to it is reached. Whether the status changed."""
        self.ensure_open()
        self.milestones = self.milestones | {m.name for m in reached}
        return self._become(
            next_status(required_milestones(process, self.parties), self.status, self.milestones)
        )

    @property
    def completed(self) -> bool:
        return self.status is CaseStatus.COMPLETED

    def reject(self, process: ProcessDefinition, partner_id: str) -> None:
        """Only a party in a rejection slot rejects, and only an open case."""
        if not may_reject(process, self.parties, partner_id):
            raise NotAParty(not_a_party(partner_id, self.case_type, process.rejection_slots, "a rejection"))
        self.ensure_open()
        self._become(CaseStatus.REJECTED)

    def check_may_ask_citizen(self, process: ProcessDefinition, partner_id: str) -> None:
        """Asking the citizen for something belongs to the parties doing the work, on an open
        case; the case stays as it is."""
        if not may_request_action(process, self.parties, partner_id):
            slots = process.working_slots
            raise NotAParty(not_a_party(partner_id, self.case_type, slots, "a request to the citizen"))
        self.ensure_open()

    def identified(self, citizen_id: str | None) -> bool:
        """Identity answered: the case learns the citizen id, and an opened case is in progress.
        Whether the status changed."""
        if citizen_id is not None:
            self.citizen_id = citizen_id
        if self.status is CaseStatus.OPENED:
            return self._become(CaseStatus.IN_PROGRESS)
        return False

    def escalate(self, process: ProcessDefinition) -> tuple[str, ...]:
        """The deadline passed: the case is escalated; the milestones still missing."""
        missing = tuple(sorted(required_milestones(process, self.parties) - self.milestones))
        self._become(CaseStatus.ESCALATED)
        return missing

    def _become(self, status: CaseStatus) -> bool:
        changed = status is not self.status
        self.status = status
        return changed
