"""Case-level events every case type shares: deliveries to partners, completion,
rejection, escalation and a party slot nobody fills.

A partner never receives the event a citizen or another partner sent. It receives a
``CaseDelivery``: the original event's data reduced to the fields its subscription
allows, and the person as its sector sees them (a sector pseudonym, never the AHVN13).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, Field

from contracts.base import Contract, ContractModel
from contracts.ech import Jurisdiction, LocalPersonId, ParticipantIdStr, Sex
from contracts.identity import Role

__all__ = [
    "CaseActionRequired",
    "CaseCompleted",
    "CaseDelivery",
    "CaseEscalated",
    "CasePartyMissing",
    "CaseRejected",
    "DeliveredPerson",
    "SlotName",
]

_PREFIX = "ch.lu.hub.case."
CaseType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
EventTypeName = Annotated[str, Field(min_length=1, max_length=200)]
SlotName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", max_length=63)]
"""A party slot of a case type, as its process definition names it (``arrival-municipality``)."""


class DeliveredPerson(ContractModel):
    """A person as one sector sees them: the pseudonym always, other fields only where
    the subscription allows them. There is no field for the social security number at all."""

    sector_pseudonym: str = Field(min_length=1, max_length=128)
    local_person_id: LocalPersonId | None = None
    official_name: str | None = Field(default=None, max_length=100)
    first_name: str | None = Field(default=None, max_length=100)
    sex: Sex | None = None
    date_of_birth: date | None = None


class CaseDelivery(Contract):
    event_type: ClassVar[str] = _PREFIX + "delivery.v1"

    case_type: CaseType
    event_type_delivered: EventTypeName  # the type of the event this delivery carries
    recipient: ParticipantIdStr
    purpose: str = Field(min_length=1, max_length=500)
    legal_basis: str = Field(min_length=1, max_length=500)
    subject: DeliveredPerson | None = None
    # The original data reduced to the subscription's fields (data minimisation).
    data: dict[str, Any]


class CaseCompleted(Contract):
    event_type: ClassVar[str] = _PREFIX + "completed.v1"

    case_type: CaseType
    # Aware only: a naive timestamp means a different instant to each reader.
    completed_at: AwareDatetime
    milestones: tuple[Annotated[str, Field(min_length=1)], ...]


class CaseRejected(Contract):
    """Sent by a partner whose role may reject the case; the citizen learns the reason."""

    event_type: ClassVar[str] = _PREFIX + "rejected.v1"

    rejected_by: ParticipantIdStr
    reason: str = Field(min_length=1, max_length=500)


class CaseActionRequired(Contract):
    """A partner needs something from the citizen before it can go on (a document, a visit).

    The case stays open; the citizen is told what to do and by when, in their language.
    """

    event_type: ClassVar[str] = _PREFIX + "action-required.v1"

    requested_by: ParticipantIdStr
    action: str = Field(min_length=1, max_length=500, examples=["Bitte reichen Sie den Mietvertrag ein."])
    due_on: date | None = None


class CaseEscalated(Contract):
    """The case's deadline (SLA) passed with milestones missing; for the operations team."""

    event_type: ClassVar[str] = _PREFIX + "escalated.v1"

    case_type: CaseType
    deadline: AwareDatetime
    missing_milestones: tuple[str, ...]


class CasePartyMissing(Contract):
    """A party slot of a case that no active partner fills, for the operations team.

    The case cannot complete while a milestone of that slot is missing; the slot is filled
    as soon as a partner with the role and the jurisdiction is registered or reactivated.
    """

    event_type: ClassVar[str] = _PREFIX + "party-missing.v1"

    case_type: CaseType
    slot: SlotName
    role: Role
    jurisdiction: Jurisdiction | None = Field(
        default=None, description="what the slot needs; unset: the opening event names none"
    )
    reason: str = Field(min_length=1, max_length=300)
