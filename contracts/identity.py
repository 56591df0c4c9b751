"""Events of the identity service: sector pseudonyms and the partner register.

Only the identity service sees the AHVN13 together with the pseudonyms; the pseudonym
events never leave the hub. Partner events announce who is who (on
``hub.identity.partners``, keyed by partner id); the registry builds its routing from them.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from contracts.base import Contract, ContractModel
from contracts.ech import Jurisdiction, LocalPersonId, ParticipantIdStr, Person, Sector
from contracts.envelope import SIGNING_KEY_ID_PATTERN

__all__ = [
    "IssuedPseudonym",
    "KeyAlgorithm",
    "PartnerKeyRegistered",
    "PartnerKeyRevoked",
    "PartnerName",
    "PartnerRegistered",
    "PartnerStatus",
    "PartnerStatusChanged",
    "PersonIdCategory",
    "PseudonymsIssued",
    "PseudonymsRequested",
    "Recipient",
    "Role",
    "SedexId",
    "SigningKeyId",
    "SigningPublicKey",
]

_PREFIX = "ch.lu.hub.identity."

PartnerName = Annotated[str, Field(min_length=1, max_length=200)]
Role = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", max_length=50)]
"""A partner role in lowercase-hyphen words (``tax-office``); catalogue and processes name them."""
SedexId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$", max_length=50)]
PersonIdCategory = Annotated[str, Field(min_length=1, max_length=20)]
"""An eCH-0044 personIdCategory, as in ``LocalPersonId.category`` (e.g. ``CH.LU.1061``)."""
PartnerStatus = Literal["active", "suspended"]
SigningKeyId = Annotated[str, Field(pattern=SIGNING_KEY_ID_PATTERN)]
"""The id a partner's events name in ``ce_sigkeyid``; unique across the hub."""
SigningPublicKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")]
"""An Ed25519 public key: its 32 raw bytes, standard base64."""
KeyAlgorithm = Literal["ed25519"]


class Recipient(ContractModel):
    partner_id: ParticipantIdStr
    sector: Sector


class PseudonymsRequested(Contract):
    """Pseudonyms for the recipients of a case and, if asked, the citizen's own hub pseudonym."""

    event_type: ClassVar[str] = _PREFIX + "pseudonyms-requested.v1"

    person: Person
    recipients: tuple[Recipient, ...]
    citizen_pseudonym: bool = Field(
        default=False, description="also issue the person's citizen-services pseudonym (citizen_id)"
    )

    @model_validator(mode="after")
    def _asks_for_something(self) -> Self:
        if not self.recipients and not self.citizen_pseudonym:
            raise ValueError("a request needs recipients or the citizen pseudonym")
        return self


class IssuedPseudonym(ContractModel):
    partner_id: ParticipantIdStr
    sector: Sector
    pseudonym: str = Field(min_length=1, max_length=128)
    local_person_id: LocalPersonId | None = None


class PseudonymsIssued(Contract):
    """Pseudonyms per recipient, and how the person was recognised.

    ``match`` tells the consumer whether the person was found by AHVN13, by a
    register's local id, or is new to the hub; ``flagged-for-review`` means new, but
    someone with the same name and date of birth is known, and a person must decide.
    A recipient that is unknown or suspended gets no entry (and must get no delivery).
    """

    event_type: ClassVar[str] = _PREFIX + "pseudonyms-issued.v1"

    match: Literal["exact-vn", "local-id", "new", "flagged-for-review"]
    pseudonyms: tuple[IssuedPseudonym, ...]
    citizen_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="the person's citizen-services pseudonym, if requested: keys preferences and inbox",
    )


class PartnerRegistered(Contract):
    """A partner as the identity service knows it, after registration or on first announcement."""

    event_type: ClassVar[str] = _PREFIX + "partner-registered.v1"

    partner_id: ParticipantIdStr
    name: PartnerName
    sector: Sector
    roles: tuple[Role, ...] = Field(min_length=1)
    jurisdiction: Jurisdiction
    sedex_id: SedexId | None = None
    local_person_id_category: PersonIdCategory | None = None
    status: PartnerStatus


class PartnerStatusChanged(Contract):
    event_type: ClassVar[str] = _PREFIX + "partner-status-changed.v1"

    partner_id: ParticipantIdStr
    status: PartnerStatus
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class PartnerKeyRegistered(Contract):
    """A public key a partner signs its events with, and when it may be used.

    A partner may hold several valid keys at once (rotation); the registry accepts an
    event signed with any of them inside its window and not revoked.
    """

    event_type: ClassVar[str] = _PREFIX + "partner-key-registered.v1"

    partner_id: ParticipantIdStr
    key_id: SigningKeyId
    algorithm: KeyAlgorithm = "ed25519"
    public_key: SigningPublicKey
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _window_is_not_empty(self) -> Self:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be later than valid_from")
        return self


class PartnerKeyRevoked(Contract):
    """A key no event may be accepted with any more, whatever its validity window says."""

    event_type: ClassVar[str] = _PREFIX + "partner-key-revoked.v1"

    partner_id: ParticipantIdStr
    key_id: SigningKeyId
    revoked_at: AwareDatetime = Field(description="when identity revoked it")
    reason: str | None = Field(default=None, min_length=1, max_length=500)
