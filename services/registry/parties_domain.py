"""Who is a party to a case, free of I/O: resolving slots, acting, receiving, completing.

A case's parties are resolved once, when it opens: each slot of its process definition
that applies to the case gets the jurisdiction the opening event names for it and the
one active partner with the slot's role and that jurisdiction. A slot no active partner
fills (or that several would fill) stays unfilled, with the reason, for operations to see.

Everything later reads the stored parties, never the opening event again:

* a milestone counts only from the partner filling the milestone's slot, a rejection only
  from a rejection slot, a request to the citizen only from a working slot;
* a delivery reaches a partner only if it fills a slot of the case, or if its subscription
  spans all cases (``all-cases``); which of its subscriptions apply, by the slots it fills,
  is decided in ``subscriptions_domain``, and the basis is recorded with the delivery;
* a case completes once every milestone of a slot that applies to it is reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts import Jurisdiction
from services.registry.domain import Milestone, PartySlot, ProcessDefinition, get_path


@dataclass(frozen=True)
class Candidate:
    """A partner as slot resolution sees it."""

    partner_id: str
    roles: tuple[str, ...]
    jurisdiction: Jurisdiction | None
    active: bool


@dataclass(frozen=True)
class Party:
    """A slot of one case: what it needs and who fills it (``partner_id`` None: nobody)."""

    slot: str
    role: str
    jurisdiction: Jurisdiction | None
    partner_id: str | None = None
    unfilled_reason: str | None = None

    @property
    def filled(self) -> bool:
        return self.partner_id is not None

    def describe(self) -> str:
        """``arrival-municipality (municipality, municipality 1711 (ZG))``: names no person."""
        where = "" if self.jurisdiction is None else f", {self.jurisdiction}"
        return f"{self.slot} ({self.role}{where})"


def needed_jurisdiction(slot: PartySlot, data: Mapping[str, Any]) -> Jurisdiction | None:
    """The jurisdiction the opening event names for ``slot``; None if it names none usable
    (the opener slot needs none: its partner is whoever opened the case)."""
    try:
        if slot.municipality is not None:
            municipality = get_path(data, slot.municipality)
            if not isinstance(municipality, Mapping):
                return None
            return Jurisdiction(
                level="municipality",
                bfs_number=municipality.get("bfs_number"),
                canton=municipality.get("canton"),
            )
        if slot.canton is not None:
            return Jurisdiction(level="canton", canton=get_path(data, slot.canton))
    except ValidationError:
        return None  # e.g. a canton abbreviation no canton has: nobody can fill it
    return None


def fill_slot(slot: str, role: str, needed: Jurisdiction | None, partners: Iterable[Candidate]) -> Party:
    """The one active partner with ``role`` and exactly the ``needed`` jurisdiction.

    Never a guess: with none, or with several (the register is ambiguous), the slot stays
    unfilled and says why, so that operations can act and nobody receives a case by chance.
    """
    if needed is None:
        return Party(slot, role, None, unfilled_reason="the opening event names no jurisdiction for it")
    matches = sorted(
        p.partner_id for p in partners if p.active and role in p.roles and p.jurisdiction == needed
    )
    if len(matches) == 1:
        return Party(slot, role, needed, matches[0])
    if not matches:
        return Party(slot, role, needed, unfilled_reason=f"no active partner with role {role} for {needed}")
    return Party(
        slot,
        role,
        needed,
        unfilled_reason=f"{len(matches)} active partners with role {role} for {needed}: "
        "the register must leave one",
    )


def resolve_parties(
    process: ProcessDefinition, data: Mapping[str, Any], *, opener: Candidate, partners: Sequence[Candidate]
) -> tuple[Party, ...]:
    """Every slot that applies to the case opened with ``data``, in definition order."""
    needed = {slot.name: needed_jurisdiction(slot, data) for slot in process.parties}
    parties: list[Party] = []
    for slot in process.parties:
        if slot.opener:
            parties.append(Party(slot.name, slot.role, opener.jurisdiction, opener.partner_id))
        elif applies(slot, needed):
            parties.append(fill_slot(slot.name, slot.role, needed[slot.name], partners))
    return tuple(parties)


def applies(slot: PartySlot, needed: Mapping[str, Jurisdiction | None]) -> bool:
    """A slot with ``unless_same_as`` applies only if it needs another jurisdiction than
    that slot. Needing none, it applies (and stays unfilled): never skipped for lack of data."""
    if slot.unless_same_as is None or needed[slot.name] is None:
        return True
    return needed[slot.name] != needed[slot.unless_same_as]


def slots_of(parties: Iterable[Party], partner_id: str) -> tuple[str, ...]:
    """The slots ``partner_id`` fills in the case, in definition order (a partner may fill several)."""
    return tuple(p.slot for p in parties if p.partner_id == partner_id)


def unfilled(parties: Iterable[Party]) -> tuple[Party, ...]:
    return tuple(p for p in parties if not p.filled)


def milestones_reached(
    process: ProcessDefinition, parties: Iterable[Party], event_type: str, partner_id: str
) -> tuple[Milestone, ...]:
    """The milestones an event of ``event_type`` from ``partner_id`` reaches: of that type and
    of a slot the sender fills. Empty: the sender is not the party the milestone needs."""
    slots = set(slots_of(parties, partner_id))
    return tuple(m for m in process.milestones_of_type(event_type) if m.slot in slots)


def may_reject(process: ProcessDefinition, parties: Iterable[Party], partner_id: str) -> bool:
    return bool(set(slots_of(parties, partner_id)) & set(process.rejection_slots))


def may_request_action(process: ProcessDefinition, parties: Iterable[Party], partner_id: str) -> bool:
    """Asking the citizen for something belongs to the parties doing the work."""
    return bool(set(slots_of(parties, partner_id)) & process.working_slots)


def not_a_party(partner_id: str, case_type: str, slots: Iterable[str], step: str) -> str:
    """Why ``partner_id`` may not take ``step``: it fills none of ``slots``. Names rules, no person."""
    needed = " or ".join(sorted(set(slots))) or "no slot"
    return f"{partner_id} is not a party to this {case_type} case as {needed}, which {step} needs"


def required_milestones(process: ProcessDefinition, parties: Iterable[Party]) -> frozenset[str]:
    """The milestones the case waits for: those of the slots that apply to it, filled or not
    (an unfilled slot keeps the case open, and its deadline escalates it)."""
    applying = {p.slot for p in parties}
    return frozenset(m.name for m in process.milestones if m.slot in applying)
