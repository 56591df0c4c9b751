"""Identity rules, free of I/O: sector pseudonyms, person matching, what a partner may see.

Each sector gets its own key, derived from the hub's pseudonym secret, the sector and a
key version; a person's pseudonym in a sector is a keyed hash of their AHVN13 under that
key. Two sectors therefore hold unrelated identifiers for the same person and cannot
join their data, while the identity service can recompute them (eCH-0215 SPID idea).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from contracts import LocalPersonId

Match = Literal["exact-vn", "local-id", "new", "flagged-for-review"]

ADMIN_CLI_SOURCE = "urn:ch:lu:hub:admin:cli"
PARTNER_SOURCE_PREFIX = "urn:ch:lu:hub:partner:"
OPERATIONS_ROLE = "operations"


def sector_key(secret: bytes, sector: str, version: int = 1) -> bytes:
    """The HMAC key of ``sector`` at ``version``; never stored, always derived."""
    if version < 1:
        raise ValueError("key versions start at 1")
    # Version 1 keeps the label used before keys had versions, so every pseudonym
    # issued until then can still be recomputed from its stored key version.
    label = f"hub-sector-key:{sector}" if version == 1 else f"hub-sector-key:{sector}:v{version}"
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


def sector_pseudonym(secret: bytes, sector: str, vn: str, version: int = 1) -> str:
    """Stable per (person, sector, key version); 26 base32 characters (130 bits) after the sector."""
    digest = hmac.new(sector_key(secret, sector, version), vn.encode(), hashlib.sha256).digest()
    return f"{sector}:{base64.b32encode(digest).decode().rstrip('=').lower()[:26]}"


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
