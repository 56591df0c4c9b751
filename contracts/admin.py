"""Administrative commands (partners, subscriptions), published by the hub CLI or an operator's system.

They travel on ``hub.admin``, which identity and the registry both read; each ignores
the commands meant for the other. Partner commands are answered by the identity
service with ``PartnerRegistered`` / ``PartnerStatusChanged`` on ``hub.identity.partners``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from contracts.base import Contract
from contracts.ech import ParticipantIdStr, Sector
from contracts.identity import PartnerName, PartnerStatus, PersonIdCategory, Role, SedexId

__all__ = ["ChangePartnerStatus", "RegisterPartner"]

_PREFIX = "ch.lu.hub.admin."


class RegisterPartner(Contract):
    """Create a partner, or update one (idempotent); a new partner starts active."""

    event_type: ClassVar[str] = _PREFIX + "register-partner.v1"

    partner_id: ParticipantIdStr
    name: PartnerName
    sector: Sector
    roles: tuple[Role, ...] = Field(min_length=1)
    sedex_id: SedexId | None = None
    local_person_id_category: PersonIdCategory | None = None


class ChangePartnerStatus(Contract):
    """Suspend a partner (it gets no pseudonyms and no deliveries) or make it active again."""

    event_type: ClassVar[str] = _PREFIX + "change-partner-status.v1"

    partner_id: ParticipantIdStr
    status: PartnerStatus
    reason: str | None = Field(default=None, min_length=1, max_length=500)
