"""Case rules of the registry, free of I/O.

Case types are data: a process definition (``processes/*.json``) names the event that
opens a case, the case's party slots (who takes part, and how the opening event names
the jurisdiction each needs), the milestones (event type and the slot that provides
each), which slots may reject, and the deadline. Routing reduces each delivery to the
fields a subscription allows. Nothing here knows a particular case type; the party rules
(resolving slots, who may act, who may receive) are in ``services.registry.parties_domain``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import resources
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import CATALOG
from contracts.case import SlotName
from contracts.identity import Role


class CaseStatus(StrEnum):
    OPENED = "opened"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    ESCALATED = "escalated"


FINAL_STATUSES = frozenset({CaseStatus.COMPLETED, CaseStatus.REJECTED})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Opening(_Frozen):
    event_type: str
    role: str


class PartySlot(_Frozen):
    """One party of a case type and how the opening event names the jurisdiction it needs.

    Exactly one source: ``opener`` (the partner that opened the case is this party),
    ``municipality`` (a dotted path to an eCH-0007 municipality in the opening event: the
    slot needs that municipality, by BFS number and canton) or ``canton`` (a path to a
    canton abbreviation). ``unless_same_as`` names another slot: this one applies to a
    case only when the jurisdiction it needs differs from that slot's (the departure
    canton's tax office takes part only in a move that crosses cantons).
    """

    name: SlotName
    role: Role
    opener: bool = False
    municipality: str | None = None
    canton: str | None = None
    unless_same_as: SlotName | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [self.opener, self.municipality is not None, self.canton is not None]
        if sources.count(True) != 1:
            raise ValueError(f"slot {self.name} needs exactly one of opener, municipality, canton")
        if self.opener and self.unless_same_as is not None:
            raise ValueError(f"the opener slot {self.name} always applies")
        return self


class Milestone(_Frozen):
    """A step the case waits for: an event type from the partner filling ``slot``.

    Two milestones may share an event type with different slots (each tax office of a move
    across cantons sends ``tax-record-updated``): the sender's slot tells them apart.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    event_type: str
    slot: SlotName


class ProcessDefinition(_Frozen):
    case_type: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    version: int = Field(ge=1)
    title: str
    opened_by: Opening
    subject_person: str | None = None  # path to the eCH-0044 person in the opening event
    citizen_contact: str | None = None  # path to the citizen's Contact, for notifications
    citizen_placeholders: dict[str, str] = {}
    parties: tuple[PartySlot, ...] = Field(min_length=1)
    milestones: tuple[Milestone, ...]
    rejection_slots: tuple[SlotName, ...] = ()
    deadline_s: int = Field(gt=0)

    @model_validator(mode="after")
    def _names_only_its_own_slots(self) -> Self:
        names = [slot.name for slot in self.parties]
        if len(set(names)) != len(names):
            raise ValueError(f"process {self.case_type} names a slot twice")
        referenced = [m.slot for m in self.milestones] + list(self.rejection_slots)
        referenced += [s.unless_same_as for s in self.parties if s.unless_same_as is not None]
        if unknown := sorted(set(referenced) - set(names)):
            raise ValueError(f"process {self.case_type} names undefined slots: {', '.join(unknown)}")
        if any(self.slot(s.unless_same_as).opener for s in self.parties if s.unless_same_as):
            raise ValueError(f"process {self.case_type}: unless_same_as cannot name the opener slot")
        if any(s.opener and s.role != self.opened_by.role for s in self.parties):
            raise ValueError(f"process {self.case_type}: the opener slot has the opening role")
        if len({m.name for m in self.milestones}) != len(self.milestones):
            raise ValueError(f"process {self.case_type} names a milestone twice")
        return self

    def slot(self, name: str) -> PartySlot:
        return next(slot for slot in self.parties if slot.name == name)

    def milestones_of_type(self, event_type: str) -> tuple[Milestone, ...]:
        return tuple(m for m in self.milestones if m.event_type == event_type)

    @property
    def milestone_names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.milestones)

    @property
    def working_slots(self) -> frozenset[str]:
        """Slots with a part in the work: they provide a milestone or may reject the case."""
        return frozenset(m.slot for m in self.milestones) | frozenset(self.rejection_slots)


class Processes:
    """All case types, indexed by their name and by the event type that opens them."""

    def __init__(self, definitions: Iterable[ProcessDefinition]) -> None:
        self.by_case_type: dict[str, ProcessDefinition] = {}
        self.by_opening: dict[str, ProcessDefinition] = {}
        for definition in definitions:
            _check_known_types(definition)
            self.by_case_type[definition.case_type] = definition
            self.by_opening[definition.opened_by.event_type] = definition

    def __getitem__(self, case_type: str) -> ProcessDefinition:
        return self.by_case_type[case_type]


def _check_known_types(definition: ProcessDefinition) -> None:
    for event_type in [definition.opened_by.event_type, *(m.event_type for m in definition.milestones)]:
        if event_type not in CATALOG:
            raise ValueError(f"process {definition.case_type} names unknown event type {event_type}")


def load_processes(package: str = "services.registry.processes") -> Processes:
    files = [f for f in resources.files(package).iterdir() if f.name.endswith(".json")]
    return Processes(ProcessDefinition.model_validate_json(f.read_text("utf-8")) for f in files)


def next_status(required: frozenset[str], current: CaseStatus, reached: frozenset[str]) -> CaseStatus:
    """After a milestone: completed once every ``required`` milestone is reached (also when
    escalated). Which are required depends on the case's parties
    (``parties_domain.required_milestones``)."""
    if current in FINAL_STATUSES:
        return current
    if required <= reached:
        return CaseStatus.COMPLETED
    return CaseStatus.ESCALATED if current is CaseStatus.ESCALATED else CaseStatus.IN_PROGRESS


def get_path(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def minimize(
    data: Mapping[str, Any], allowed: Iterable[str], *, withhold: str | None = None
) -> dict[str, Any]:
    """Only the allowed dotted paths survive; ``withhold`` (the subject person) never does.

    The person travels separately, pseudonymised; listing "person.first_name" allows that
    field on the delivered person, not the raw person object.
    """
    result: dict[str, Any] = {}
    for path in sorted(set(allowed)):
        if withhold and (path == withhold or path.startswith(withhold + ".")):
            continue
        value = get_path(data, path)
        if value is None:
            continue
        target = result
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = copy.deepcopy(value)
    return result


PERSON_FIELDS = ("official_name", "first_name", "sex", "date_of_birth")


def allowed_person_fields(allowed: Iterable[str], person_path: str) -> dict[str, bool]:
    granted = set(allowed)
    return {name: f"{person_path}.{name}" in granted or person_path in granted for name in PERSON_FIELDS}
