"""Relocation events, modelled on the eUmzugCH flow (eCH-0194/0221).

The citizen reports a move once; the departure and arrival municipalities and
the cantonal tax office each confirm; the hub closes or rejects the case.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from contracts.base import Contract, ContractModel
from contracts.ech import (
    Address,
    Contact,
    LocalPersonId,
    Municipality,
    ParticipantIdStr,
    Person,
    PersonName,
    Sex,
)

__all__ = [
    "ArrivalRegistered",
    "CaseCompleted",
    "CaseRejected",
    "DepartureConfirmed",
    "MoveReported",
    "MoveReportedDelivery",
    "PseudonymizedPerson",
    "TaxRecordUpdated",
]

_PREFIX = "ch.lu.hub.relocation."


class MoveReported(Contract):
    """A citizen reported a move; the only relocation event carrying the AHVN13."""

    event_type: ClassVar[str] = _PREFIX + "move-reported.v1"

    person: Person
    contact: Contact
    departure: Municipality
    arrival: Municipality
    previous_address: Address
    new_address: Address
    move_date: date


class DepartureConfirmed(Contract):
    event_type: ClassVar[str] = _PREFIX + "departure-confirmed.v1"

    municipality: Municipality
    confirmed_on: date
    remarks: str | None = Field(default=None, max_length=500)


class ArrivalRegistered(Contract):
    event_type: ClassVar[str] = _PREFIX + "arrival-registered.v1"

    municipality: Municipality
    registered_on: date
    remarks: str | None = Field(default=None, max_length=500)


class TaxRecordUpdated(Contract):
    """The cantonal tax office confirmed it updated its record."""

    event_type: ClassVar[str] = _PREFIX + "tax-record-updated.v1"

    updated_on: date


class CaseCompleted(Contract):
    event_type: ClassVar[str] = _PREFIX + "case-completed.v1"

    # Aware only: a naive timestamp means a different instant to each reader.
    completed_at: AwareDatetime
    milestones: tuple[Annotated[str, Field(min_length=1)], ...]


class CaseRejected(Contract):
    event_type: ClassVar[str] = _PREFIX + "case-rejected.v1"

    rejected_by: ParticipantIdStr
    reason: str = Field(min_length=1, max_length=500)


class PseudonymizedPerson(ContractModel):
    """A person as one sector sees them.

    Deliberately without the social security number: partners get a sector
    pseudonym, so sectors cannot join their data on one national number.
    """

    sector_pseudonym: str = Field(min_length=1, max_length=128)
    local_person_id: LocalPersonId | None = None
    official_name: PersonName
    first_name: PersonName
    sex: Sex
    date_of_birth: date


class MoveReportedDelivery(Contract):
    """The move as delivered to one partner, pseudonymised for its sector.

    The addresses are optional because not every sector needs them
    (data minimisation).
    """

    event_type: ClassVar[str] = _PREFIX + "move-reported-delivery.v1"

    recipient: ParticipantIdStr
    person: PseudonymizedPerson
    departure: Municipality
    arrival: Municipality
    move_date: date
    previous_address: Address | None = None
    new_address: Address | None = None
