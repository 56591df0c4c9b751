"""Administrative commands (partners, subscriptions), published by the hub CLI or an operator's system.

They travel on ``hub.admin``, which identity and the registry both read; each ignores
the commands meant for the other. Partner commands are answered by the identity
service with ``PartnerRegistered`` / ``PartnerStatusChanged`` on ``hub.identity.partners``;
partner key commands with ``PartnerKeyRegistered`` / ``PartnerKeyRevoked``.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import AwareDatetime, Field, model_validator

from contracts.base import Contract
from contracts.ech import Jurisdiction, ParticipantIdStr, Sector
from contracts.identity import (
    KeyAlgorithm,
    PartnerName,
    PartnerStatus,
    PersonIdCategory,
    Role,
    SedexId,
    SigningKeyId,
    SigningPublicKey,
)

__all__ = ["ChangePartnerStatus", "RegisterPartner", "RegisterPartnerKey", "RevokePartnerKey"]

_PREFIX = "ch.lu.hub.admin."


class RegisterPartner(Contract):
    """Create a partner, or update one (idempotent); a new partner starts active.

    ``jurisdiction`` says for whom the partner acts: a case's party slots are filled by
    role and jurisdiction, so it decides which cases the partner sees and may move.
    """

    event_type: ClassVar[str] = _PREFIX + "register-partner.v1"

    partner_id: ParticipantIdStr
    name: PartnerName
    sector: Sector
    roles: tuple[Role, ...] = Field(min_length=1)
    jurisdiction: Jurisdiction
    sedex_id: SedexId | None = None
    local_person_id_category: PersonIdCategory | None = None


class ChangePartnerStatus(Contract):
    """Suspend a partner (it gets no pseudonyms and no deliveries) or make it active again."""

    event_type: ClassVar[str] = _PREFIX + "change-partner-status.v1"

    partner_id: ParticipantIdStr
    status: PartnerStatus
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class RegisterPartnerKey(Contract):
    """Add a public key a partner signs its events with (rotation: several may be valid at once).

    Registering the same key id with the same key again updates its window (idempotent);
    a key id is never reused for another key or partner, and a revoked key stays revoked.
    """

    event_type: ClassVar[str] = _PREFIX + "register-partner-key.v1"

    partner_id: ParticipantIdStr
    key_id: SigningKeyId
    algorithm: KeyAlgorithm = "ed25519"
    public_key: SigningPublicKey
    valid_from: AwareDatetime | None = Field(default=None, description="unset: from registration on")
    valid_until: AwareDatetime | None = Field(default=None, description="unset: until revoked")

    @model_validator(mode="after")
    def _window_is_not_empty(self) -> Self:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be later than valid_from")
        return self


class RevokePartnerKey(Contract):
    """Withdraw a key at once, e.g. when it leaked; events signed with it are refused from now on."""

    event_type: ClassVar[str] = _PREFIX + "revoke-partner-key.v1"

    partner_id: ParticipantIdStr
    key_id: SigningKeyId
    reason: str | None = Field(default=None, min_length=1, max_length=500)
