"""Building-permit consultation: the city's building department asks the cantonal
environment office and the building insurance for their opinions.

This case type exists only as these contracts and a process definition
(services/registry/processes/building-permit.json): no service code knows it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from contracts.base import Contract, ContractModel
from contracts.ech import Address, Contact, Municipality, Person

__all__ = [
    "BuildingProject",
    "ConsultationRequested",
    "EnvironmentOpinionGiven",
    "InsuranceOpinionGiven",
    "Opinion",
    "Parcel",
]

_PREFIX = "ch.lu.hub.building-permit."


class Opinion(StrEnum):
    APPROVE = "approve"
    APPROVE_WITH_CONDITIONS = "approve-with-conditions"
    OBJECT = "object"


class Parcel(ContractModel):
    municipality: Municipality
    parcel_number: str = Field(min_length=1, max_length=20)
    egrid: str | None = Field(default=None, pattern=r"^CH[0-9A-Z]{12}$")  # federal parcel id


class BuildingProject(ContractModel):
    description: str = Field(min_length=1, max_length=1000)
    address: Address
    building_volume_m3: int | None = Field(default=None, ge=0)
    heating: str | None = Field(default=None, max_length=100)


class ConsultationRequested(Contract):
    event_type: ClassVar[str] = _PREFIX + "consultation-requested.v1"

    applicant: Person
    contact: Contact
    parcel: Parcel
    project: BuildingProject
    dossier_number: str = Field(min_length=1, max_length=40)


class EnvironmentOpinionGiven(Contract):
    event_type: ClassVar[str] = _PREFIX + "environment-opinion-given.v1"

    opinion: Opinion
    conditions: tuple[str, ...] = ()


class InsuranceOpinionGiven(Contract):
    event_type: ClassVar[str] = _PREFIX + "insurance-opinion-given.v1"

    opinion: Opinion
    conditions: tuple[str, ...] = ()
