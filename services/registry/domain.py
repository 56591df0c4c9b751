"""Case rules of the registry, free of I/O.

Case types are data: a process definition (``processes/*.json``) names the event that
opens a case, the milestones (event type and the partner role that provides each), who
may reject, and the deadline. Routing reduces each delivery to the fields a
subscription allows. Nothing here knows a particular case type.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts import CATALOG


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


class Milestone(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    event_type: str
    role: str


class ProcessDefinition(_Frozen):
    case_type: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    version: int = Field(ge=1)
    title: str
    opened_by: Opening
    subject_person: str | None = None  # path to the eCH-0044 person in the opening event
    citizen_contact: str | None = None  # path to the citizen's Contact, for notifications
    citizen_placeholders: dict[str, str] = {}
    milestones: tuple[Milestone, ...]
    rejection_roles: tuple[str, ...] = ()
    deadline_s: int = Field(gt=0)

    def milestone_for(self, event_type: str) -> Milestone | None:
        return next((m for m in self.milestones if m.event_type == event_type), None)

    @property
    def milestone_names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.milestones)

    @property
    def working_roles(self) -> frozenset[str]:
        """Roles with a part in the case: they provide a milestone or may reject it."""
        return frozenset(m.role for m in self.milestones) | frozenset(self.rejection_roles)


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


def next_status(process: ProcessDefinition, current: CaseStatus, reached: frozenset[str]) -> CaseStatus:
    """After a milestone: completed once every milestone is reached (also when escalated)."""
    if current in FINAL_STATUSES:
        return current
    if process.milestone_names <= reached:
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
