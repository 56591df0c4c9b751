"""Identity rules, free of I/O: sector pseudonyms, person matching, what a partner may see.

Each sector gets its own key, derived from the hub's pseudonym secret, the sector and a
key version. A person's pseudonym in a sector is a keyed hash under that key of the
person's AHVN13 *and a random seed of their own* (eCH-0215 SPID idea: two sectors hold
unrelated identifiers for the same person and cannot join their data).

The seed (``PSEUDONYM_SEED_BYTES`` random bytes, drawn when the person is first stored)
lives only in the person's sealed record, under their data key. Erasing the person
destroys that key and with it the seed: nobody, the hub included, can recompute their
pseudonyms from the AHVN13 any more, and the same AHVN13 coming back later is a new
person with a new seed, so their new pseudonyms and citizen id share nothing with the
erased ones that partners and the audit log still hold.

The hashed message (``pseudonym_message``) is, byte for byte:

``b"hub-pseudonym:seeded:v1" || u16be(len(vn)) || vn || u16be(len(seed)) || seed``,
``vn`` being the AHVN13's 13 ASCII digits. The lengths make the split of the message
unique; the label versions the form.

The pseudonym is ``<sector>:`` and the first 26 lower-case base32 characters (130 bits)
of HMAC-SHA256(sector key at version, message). Issued pseudonyms are stored, so a key
rotation changes only those of (person, sector) pairs issued afterwards.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from contracts import LocalPersonId, Sector
from contracts.admin import RegisterPartnerKey
from contracts.channels import PARTNER_SOURCE_PREFIX
from contracts.ech import Jurisdiction
from contracts.identity import PartnerStatus
from services.identity.errors import KeyConflict

Match = Literal["exact-vn", "local-id", "new", "flagged-for-review"]

ADMIN_CLI_SOURCE = "urn:ch:lu:hub:admin:cli"
OPERATIONS_ROLE = "operations"
# Not a partner's sector: the hub's own, whose pseudonym is the citizen id (preferences, inbox).
CITIZEN_SECTOR = Sector.CITIZEN_SERVICES.value

PSEUDONYM_SEED_BYTES = 32  # drawn for every new person: 256 bits
MIN_PSEUDONYM_SEED_BYTES = 16  # accepted when hashing: a shorter seed could be guessed
_SEEDED_LABEL = b"hub-pseudonym:seeded:v1"


def sector_key(secret: bytes, sector: str, version: int = 1) -> bytes:
    """The HMAC key of ``sector`` at ``version``; never stored, always derived."""
    if version < 1:
        raise ValueError("key versions start at 1")
    # Version 1 keeps the label used before keys had versions, so every pseudonym
    # issued until then can still be recomputed from its stored key version.
    label = f"hub-sector-key:{sector}" if version == 1 else f"hub-sector-key:{sector}:v{version}"
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


def new_pseudonym_seed() -> bytes:
    """A new person's seed, from the operating system's CSPRNG."""
    return secrets.token_bytes(PSEUDONYM_SEED_BYTES)


def pseudonym_message(vn: str, seed: bytes) -> bytes:
    """What the sector key hashes (the encoding is spelt out in the module docstring)."""
    digits = vn.encode()  # an AHVN13 is 13 ASCII digits
    if len(seed) < MIN_PSEUDONYM_SEED_BYTES:
        raise ValueError(f"a pseudonym seed has at least {MIN_PSEUDONYM_SEED_BYTES} bytes")
    return b"".join(
        (_SEEDED_LABEL, len(digits).to_bytes(2, "big"), digits, len(seed).to_bytes(2, "big"), seed)
    )


def sector_pseudonym(secret: bytes, sector: str, vn: str, version: int, seed: bytes) -> str:
    """Stable per (person, sector, key version); 26 base32 characters (130 bits) after the sector."""
    message = pseudonym_message(vn, seed)
    digest = hmac.new(sector_key(secret, sector, version), message, hashlib.sha256).digest()
    return f"{sector}:{base64.b32encode(digest).decode().rstrip('=').lower()[:26]}"


@dataclass(frozen=True)
class PseudonymBasis:
    """What a person's pseudonyms derive from; never leaves the identity service."""

    vn: str = field(repr=False)
    seed: bytes = field(repr=False)

    def pseudonym(self, secret: bytes, sector: str, version: int) -> str:
        return sector_pseudonym(secret, sector, self.vn, version, self.seed)


def normalise_name(name: str) -> str:
    """Compare names as a clerk would: case, composed accents and spacing do not matter."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def same_name(official_a: str, first_a: str, official_b: str, first_b: str) -> bool:
    return normalise_name(official_a) == normalise_name(official_b) and normalise_name(
        first_a
    ) == normalise_name(first_b)


@dataclass(frozen=True)
class Candidates:
    """What the lookups found, in the order they are asked."""

    by_vn: uuid.UUID | None = None
    by_local_id: uuid.UUID | None = None
    same_name_and_birth: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class MatchDecision:
    match: Match
    person_id: uuid.UUID | None  # the known person; None: create a new one
    review_candidates: tuple[uuid.UUID, ...] = ()


def decide_match(candidates: Candidates) -> MatchDecision:
    """Exact AHVN13 first, then a register's local id; otherwise a new person.

    Name and date of birth alone are never enough to merge: two people can share them,
    and a wrong merge would hand one person's case to another's file. Such a person is
    created anew and the look-alikes go to a human for review.
    """
    if candidates.by_vn is not None:
        return MatchDecision("exact-vn", candidates.by_vn)
    if candidates.by_local_id is not None:
        return MatchDecision("local-id", candidates.by_local_id)
    if candidates.same_name_and_birth:
        return MatchDecision("flagged-for-review", None, candidates.same_name_and_birth)
    return MatchDecision("new", None)


def local_id_for(category: str | None, local_ids: Iterable[LocalPersonId]) -> LocalPersonId | None:
    """The person's id in the recipient's own register, if the hub learnt one; else None.

    A partner only ever sees an id of its own category: another register's id would
    let it link records it has no right to link.
    """
    if category is None:
        return None
    return next((local_id for local_id in local_ids if local_id.category == category), None)


def partner_of_source(source: str) -> str | None:
    """The partner id in a CloudEvents source ``urn:ch:lu:hub:partner:<id>``; None for other senders."""
    return source.removeprefix(PARTNER_SOURCE_PREFIX) if source.startswith(PARTNER_SOURCE_PREFIX) else None


def may_administer(roles: Iterable[str], status: str) -> bool:
    """Kafka has no ACLs here, so the hub checks: only active operations partners administer."""
    return status == "active" and OPERATIONS_ROLE in roles


@dataclass(frozen=True)
class Partner:
    """A partner as the register holds it."""

    partner_id: str
    name: str
    sector: str
    roles: tuple[str, ...]
    sedex_id: str | None
    local_person_id_category: str | None
    status: PartnerStatus
    announced: bool
    # None: a row written by hand without one; it fills no slot and is never announced.
    jurisdiction: Jurisdiction | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class PartnerKey:
    """A public key a partner signs its events with, and the window it is valid in."""

    key_id: str
    partner_id: str
    algorithm: str
    public_key: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None
    revocation_reason: str | None


def check_key_registration(
    existing: PartnerKey | None, holder: str | None, command: RegisterPartnerKey
) -> None:
    """One key id for one key of one partner, one id per key, and a revoked key stays revoked.

    ``existing`` is the key stored under the command's key id, ``holder`` the id the command's
    public key is stored under (looked up only when the key id is new). Raises ``KeyConflict``.
    """
    if existing is None:
        if holder is not None:
            # One key, one id: otherwise revoking one id would leave the key usable under another.
            raise KeyConflict(f"this public key is already registered as {holder}")
        return
    if existing.partner_id != command.partner_id or existing.public_key != command.public_key:
        raise KeyConflict(f"key id {command.key_id} is taken by another key; choose a new key id")
    if existing.revoked_at is not None:
        raise KeyConflict(f"key {command.key_id} was revoked; a revoked key cannot be registered again")


def key_window(existing: PartnerKey | None, command: RegisterPartnerKey, now: dt.datetime) -> dt.datetime:
    """When the key becomes valid: as commanded, else as stored, else now. Raises
    ``KeyConflict`` for a window that ends before it starts."""
    valid_from = command.valid_from or (existing.valid_from if existing else now)
    if command.valid_until is not None and command.valid_until <= valid_from:
        raise KeyConflict(f"key {command.key_id}: valid_until must be later than {valid_from.isoformat()}")
    return valid_from
