"""Case rules of the registry, free of I/O: which milestones close which case type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class CaseStatus(StrEnum):
    OPENED = "opened"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    REJECTED = "rejected"
    ESCALATED = "escalated"


FINAL_STATUSES = frozenset({CaseStatus.COMPLETED, CaseStatus.REJECTED})


@dataclass(frozen=True)
class ProcessDefinition:
    """A case type as data: the milestones (event types) that must all arrive."""

    case_type: str
    opened_by: str
    milestones: frozenset[str]


RELOCATION = ProcessDefinition(
    case_type="relocation",
    opened_by="ch.lu.hub.relocation.move-reported.v1",
    milestones=frozenset(
        {
            "ch.lu.hub.relocation.departure-confirmed.v1",
            "ch.lu.hub.relocation.arrival-registered.v1",
            "ch.lu.hub.relocation.tax-record-updated.v1",
        }
    ),
)

PROCESSES: Mapping[str, ProcessDefinition] = {RELOCATION.case_type: RELOCATION}


def milestone_name(event_type: str) -> str:
    """'ch.lu.hub.relocation.departure-confirmed.v1' -> 'departure-confirmed'."""
    return event_type.split(".")[-2]


def next_status(process: ProcessDefinition, current: CaseStatus, reached: frozenset[str]) -> CaseStatus:
    """The status after a milestone: completed once every milestone is reached."""
    if current in FINAL_STATUSES:
        return current
    if process.milestones <= reached:
        return CaseStatus.COMPLETED
    return CaseStatus.IN_PROGRESS
