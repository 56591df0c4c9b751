"""Relocation events, modelled on the eUmzugCH flow (eCH-0194/0221).

The citizen reports a move once; the departure and arrival municipalities and
the cantonal tax office each confirm. Completion, rejection and what partners
receive are the generic case events of ``contracts.case``.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from contracts.base import Contract
from contracts.ech import (
    Address,
    Contact,
    Municipality,
    Person,
)

__all__ = [
    "ArrivalRegistered",
    "DepartureConfirmed",
    "MoveReported",
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
