"""Events between the hub's services about sector pseudonyms.

Only the identity service sees the AHVN13 together with the pseudonyms; these
events never leave the hub.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from contracts.base import Contract, ContractModel
from contracts.ech import LocalPersonId, ParticipantIdStr, Person, Sector

__all__ = ["IssuedPseudonym", "PseudonymsIssued", "PseudonymsRequested", "Recipient"]

_PREFIX = "ch.lu.hub.identity."


class Recipient(ContractModel):
    partner_id: ParticipantIdStr
    sector: Sector


class PseudonymsRequested(Contract):
    event_type: ClassVar[str] = _PREFIX + "pseudonyms-requested.v1"

    person: Person
    recipients: tuple[Recipient, ...] = Field(min_length=1)


class IssuedPseudonym(ContractModel):
    partner_id: ParticipantIdStr
    sector: Sector
    pseudonym: str = Field(min_length=1, max_length=128)
    local_person_id: LocalPersonId | None = None


class PseudonymsIssued(Contract):
    """Pseudonyms per recipient, and how the person was recognised.

    ``match`` tells the consumer whether the person was found by AHVN13, by a
    register's local id, or is new to the hub.
    """

    event_type: ClassVar[str] = _PREFIX + "pseudonyms-issued.v1"

    match: Literal["exact-vn", "local-id", "new"]
    pseudonyms: tuple[IssuedPseudonym, ...]
