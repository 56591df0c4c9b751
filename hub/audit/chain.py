"""The audit log's chain, free of I/O: entries, their canonical form, seals, verification.

Every routing decision and every disclosure of personal data becomes one entry, and so
does every partner event the registry refuses at ingress (``Decision.REFUSED``: it was
never routed, and the entry says why; see ``hub/audit/refusals.py``). Each
entry stores the seal of the entry before it and its own seal: HMAC-SHA256, under a key
kept outside the database, over a canonical serialisation of everything it says (its
position, time and the previous seal included). Changing, removing or reordering an
entry therefore breaks the chain there, and someone with only database access cannot
compute seals that fit again: a bare hash they could recompute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

GENESIS_HASH = "0" * 64  # the "previous seal" of entry 1
FORMAT_VERSION = 1  # part of every seal: a new canonical form must not verify as the old one
MIN_KEY_BYTES = 32


class Decision(StrEnum):
    DELIVERED = "delivered"  # a delivery with the listed fields went to the partner's outbox
    WITHHELD = "withheld"  # a subscriber received nothing, e.g. identity issued no pseudonym
    UNROUTED = "unrouted"  # no approved subscription: the event went to nobody
    # Refused at ingress (signature, replay window, authorization, contract): never routed.
    # The partner is the one the event claimed to come from; ``sender_verified`` says
    # whether its signature proved that claim.
    REFUSED = "refused"


@dataclass(frozen=True)
class AuditKey:
    """The chain's HMAC key; ``repr`` never shows the secret, only its id."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"an audit key needs at least {MIN_KEY_BYTES} bytes")

    @property
    def key_id(self) -> str:
        """Names the key in each entry (a wrong key file is then told apart from tampering)."""
        return hashlib.sha256(b"hub-audit-key-id:" + self.secret).hexdigest()[:16]


@dataclass(frozen=True)
class AuditEntry:
    """What was decided about one event and one partner (or about nobody: unrouted).

    ``event_id`` is the event the decision is about (the delivery's ``ce_referenceid``);
    ``fields`` are the dotted paths of exactly what the delivery disclosed;
    ``person_pseudonym`` is the recipient's sector pseudonym, ``citizen_id`` the
    citizen's citizen-services pseudonym, so an access request finds every disclosure.

    A refusal names no person: ``partner_id`` is the claimed sender, ``reason_class`` a
    short class (``signature``, ``replay-window``, ``not-authorized``, ...), ``reason``
    the error class and its message (which never carries payload values),
    ``sender_verified`` whether the sender's signature held, and ``case_type`` is empty
    (the event opened or touched nothing).
    """

    decision: Decision
    case_id: str
    case_type: str
    event_id: str
    event_type: str
    trace_id: str
    partner_id: str | None = None
    sector: str | None = None
    delivery_event_id: str | None = None
    fields: tuple[str, ...] = ()
    person_pseudonym: str | None = None
    citizen_id: str | None = None
    legal_basis: str | None = None
    purpose: str | None = None
    reason: str | None = None
    reason_class: str | None = None
    sender_verified: bool | None = None
    # Delivered and withheld: why this partner may receive the case's data at all, the
    # slots of the case it fills ("party: arrival-municipality") or "all-cases".
    basis: str | None = None


# Added to the entry after format version 1: part of the canonical form only when set, so
# entries sealed before they existed keep their seals (and an added value breaks a seal).
_OPTIONAL_FIELDS = ("reason_class", "sender_verified", "basis")


@dataclass(frozen=True)
class SealedEntry:
    """An entry as the chain stores it: position, time, key id and both seals."""

    seq: int
    recorded_at: dt.datetime
    entry: AuditEntry
    key_id: str
    prev_hash: str
    entry_hash: str


def canonical(entry: AuditEntry, *, seq: int, recorded_at: dt.datetime, key_id: str, prev_hash: str) -> bytes:
    """One byte string per content: sorted keys, no whitespace, UTF-8, UTC microseconds.

    Only strings, integers, booleans, null and lists of strings occur, so the JSON text is
    unambiguous; the time is normalised to UTC so the same instant always reads the same.
    """
    if recorded_at.tzinfo is None:
        raise ValueError("audit time must be timezone-aware")
    content = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "recorded_at": recorded_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "key_id": key_id,
        "prev_hash": prev_hash,
        "decision": entry.decision.value,
        "case_id": entry.case_id,
        "case_type": entry.case_type,
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "trace_id": entry.trace_id,
        "partner_id": entry.partner_id,
        "sector": entry.sector,
        "delivery_event_id": entry.delivery_event_id,
        "fields": list(entry.fields),
        "person_pseudonym": entry.person_pseudonym,
        "citizen_id": entry.citizen_id,
        "legal_basis": entry.legal_basis,
        "purpose": entry.purpose,
        "reason": entry.reason,
    }
    for name in _OPTIONAL_FIELDS:
        if (value := getattr(entry, name)) is not None:
            content[name] = value
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def seal(key: AuditKey, entry: AuditEntry, *, seq: int, recorded_at: dt.datetime, prev_hash: str) -> str:
    message = canonical(entry, seq=seq, recorded_at=recorded_at, key_id=key.key_id, prev_hash=prev_hash)
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()


def seal_next(
    key: AuditKey, entry: AuditEntry, *, seq: int, prev_hash: str, recorded_at: dt.datetime
) -> SealedEntry:
    """The entry at position ``seq`` after the entry whose seal is ``prev_hash``."""
    entry_hash = seal(key, entry, seq=seq, recorded_at=recorded_at, prev_hash=prev_hash)
    return SealedEntry(seq, recorded_at, entry, key.key_id, prev_hash, entry_hash)


def seal_chain(key: AuditKey, entries: list[AuditEntry], *, recorded_at: dt.datetime) -> list[SealedEntry]:
    """A whole chain from entry 1 (tests, examples)."""
    chain: list[SealedEntry] = []
    prev = GENESIS_HASH
    for seq, entry in enumerate(entries, start=1):
        chain.append(seal_next(key, entry, seq=seq, prev_hash=prev, recorded_at=recorded_at))
        prev = chain[-1].entry_hash
    return chain


class Problem(StrEnum):
    CHANGED = "changed"  # content no longer matches its seal (edited, or moved to another position)
    REMOVED = "removed"  # a position is missing
    REORDERED = "reordered"  # sealed correctly, but not after the entry now before it
    OTHER_KEY = "other-key"  # sealed with a key other than the one verifying
    HEAD = "head"  # the chain head disagrees with the last entry
    ANCHOR = "anchor"  # an entry recorded elsewhere (an anchor) is gone or different


@dataclass(frozen=True)
class ChainBreak:
    seq: int  # the first broken position
    problem: Problem
    detail: str


class ChainVerifier:
    """Walks the chain in ``seq`` order, one entry at a time, and names the first break.

    ``anchors`` (seq -> seal) are seals kept outside the database, e.g. noted after each
    verify: they catch the one change the chain cannot show by itself, entries cut off
    its end together with a rewound head.
    """

    def __init__(self, key: AuditKey, anchors: Mapping[int, str] | None = None) -> None:
        self._key = key
        self._anchors = dict(anchors or {})
        self.count = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH

    def feed(self, sealed: SealedEntry) -> ChainBreak | None:
        expected = self.last_seq + 1
        if sealed.seq > expected:
            missing = (
                f"entry {expected}"
                if sealed.seq == expected + 1
                else f"entries {expected} to {sealed.seq - 1}"
            )
            return ChainBreak(expected, Problem.REMOVED, f"{missing} missing (next is {sealed.seq})")
        if sealed.key_id != self._key.key_id:
            return ChainBreak(
                sealed.seq,
                Problem.OTHER_KEY,
                f"entry {sealed.seq} is sealed with key {sealed.key_id}, not {self._key.key_id}",
            )
        recomputed = seal(
            self._key,
            sealed.entry,
            seq=sealed.seq,
            recorded_at=sealed.recorded_at,
            prev_hash=sealed.prev_hash,
        )
        if not hmac.compare_digest(recomputed, sealed.entry_hash):
            return ChainBreak(sealed.seq, Problem.CHANGED, f"entry {sealed.seq} does not match its seal")
        if sealed.seq < expected or sealed.prev_hash != self.last_hash:
            return ChainBreak(
                sealed.seq, Problem.REORDERED, f"entry {sealed.seq} does not follow entry {self.last_seq}"
            )
        if sealed.seq in self._anchors and self._anchors[sealed.seq] != sealed.entry_hash:
            return ChainBreak(sealed.seq, Problem.ANCHOR, f"entry {sealed.seq} differs from its anchor")
        self.count += 1
        self.last_seq, self.last_hash = sealed.seq, sealed.entry_hash
        return None

    def finish(self, head_seq: int, head_hash: str) -> ChainBreak | None:
        """After the last entry: the head (advanced by every append) and anchors must agree."""
        if head_seq > self.last_seq:
            return ChainBreak(
                self.last_seq + 1,
                Problem.REMOVED,
                f"entries {self.last_seq + 1} to {head_seq} missing (the head is at {head_seq})",
            )
        if head_seq < self.last_seq or head_hash != self.last_hash:
            return ChainBreak(
                self.last_seq,
                Problem.HEAD,
                f"the chain head ({head_seq}) does not match entry {self.last_seq}",
            )
        beyond = sorted(seq for seq in self._anchors if seq > self.last_seq)
        if beyond:
            return ChainBreak(
                beyond[0],
                Problem.ANCHOR,
                f"entry {beyond[0]} is anchored but the chain ends at {self.last_seq}",
            )
        return None


@dataclass(frozen=True)
class Verdict:
    entries: int
    head_seq: int
    head_hash: str
    broken: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.broken is None
