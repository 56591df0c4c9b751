"""Signed events: Ed25519 keys and key ids, signing and verifying records, and the rules on keys and time.

A signed record carries ``ce_sigkeyid`` (which key signed it) and ``ce_signature``
(Ed25519 over the signed form of ``hub.security.signed_form``: the headers and value exactly as on
the wire). ``SigningKey.sign_headers`` adds both to the headers a producer is about to
send; ``PublicKey.verify`` checks a record's own headers and value as received. Partners in
another language reproduce this from ``docs/partners/signing.md`` with any Ed25519 library.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts import Envelope
from contracts._headers import encode_value
from hub.security.signed_form import (
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    SIGNED_FORM_VERSION,
    Headers,
    SignatureClaim,
    canonical_form,
    signed_headers,
)
from hub.security.signing_errors import (
    AmbiguousHeaders,
    BadSignature,
    ForeignSigningKey,
    FutureEvent,
    KeyOutsideValidity,
    MisroutedRecord,
    ReplayRefused,
    RevokedSigningKey,
    SignatureRefused,
    StaleEvent,
    UnknownSigningKey,
    UnsignedEvent,
)

__all__ = [
    "KEY_ID_HEADER",
    "SIGNATURE_HEADER",
    "SIGNED_FORM_VERSION",
    "AmbiguousHeaders",
    "BadSignature",
    "ForeignSigningKey",
    "FutureEvent",
    "Headers",
    "KeyOutsideValidity",
    "MisroutedRecord",
    "PublicKey",
    "RegisteredKey",
    "ReplayRefused",
    "RevokedSigningKey",
    "SignatureClaim",
    "SignatureRefused",
    "SigningKey",
    "StaleEvent",
    "UnknownSigningKey",
    "UnsignedEvent",
    "canonical_form",
    "check_freshness",
    "check_key_usable",
    "check_record_key",
    "decode_public_key",
    "encode_public_key",
    "fingerprint",
    "raw_public_key",
    "signed_headers",
    "verify_signed_by",
]


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: names a key without showing it."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()


def encode_public_key(public_key: Ed25519PublicKey) -> str:
    """The 32 raw bytes, standard base64: the form contracts and the registry carry."""
    return base64.b64encode(raw_public_key(public_key)).decode("ascii")


def decode_public_key(text: str) -> Ed25519PublicKey:
    """Inverse of ``encode_public_key``; raises ``ValueError`` for anything else."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        raise ValueError("public key is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True)
class PublicKey:
    """A key id and the Ed25519 public key it names."""

    key_id: str
    key: Ed25519PublicKey = field(repr=False)

    @classmethod
    def from_base64(cls, key_id: str, text: str) -> PublicKey:
        return cls(key_id, decode_public_key(text))

    @property
    def base64(self) -> str:
        return encode_public_key(self.key)

    def verify(self, headers: Headers, value: bytes) -> None:
        """Raise a ``SignatureRefused`` unless this key signed exactly these headers and value.

        ``headers`` are the record's own, as received: the signature covers their bytes.
        """
        claim = SignatureClaim.of(headers)
        if not claim.signed:
            raise UnsignedEvent(f"event {claim.event_id[:128]} is not signed (ce_sigkeyid and ce_signature)")
        if claim.key_id != self.key_id:
            raise BadSignature(f"event names key {(claim.key_id or '')[:128]}, not {self.key_id}")
        try:
            self.key.verify(claim.raw_signature(), canonical_form(headers, value))
        except InvalidSignature:
            raise BadSignature(
                f"signature of event {claim.event_id[:128]} does not verify with key {self.key_id}: "
                "forged, or changed after signing"
            ) from None


@dataclass(frozen=True)
class SigningKey:
    """A private key with its id. The key never appears in ``repr`` (nor in logs)."""

    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.generate())

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key_id, self.private_key.public_key())

    def sign_headers(self, headers: Headers, value: bytes) -> list[tuple[str, bytes]]:
        """The headers to send with ``value``: ``headers`` with this key's ``ce_sigkeyid`` and
        ``ce_signature`` in place of any earlier ones. Send them byte for byte as returned;
        headers added afterwards must not be signed ones (``traceparent`` is fine)."""
        unsigned = [(name, v) for name, v in headers if name not in (KEY_ID_HEADER, SIGNATURE_HEADER)]
        with_key_id = [*unsigned, (KEY_ID_HEADER, self.key_id.encode())]
        signature = self.private_key.sign(canonical_form(with_key_id, value))
        return [*with_key_id, (SIGNATURE_HEADER, base64.b64encode(signature))]


def check_key_usable(
    *,
    key_id: str,
    owner: str,
    sender: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime | None,
    revoked_at: dt.datetime | None,
    now: dt.datetime,
) -> None:
    """Refuse a registered key that ``sender`` may not use at ``now``.

    Validity is judged at the time of checking, not at the event's claimed time: that
    time is the sender's to choose, and a leaked key must not sign "old" events.
    """
    if owner != sender:
        raise ForeignSigningKey(f"key {key_id} belongs to {owner}, not to the sender {sender}")
    if revoked_at is not None:
        raise RevokedSigningKey(f"key {key_id} of {owner} was revoked at {_iso(revoked_at)}")
    if now < valid_from:
        raise KeyOutsideValidity(f"key {key_id} of {owner} is not valid before {_iso(valid_from)}")
    if valid_until is not None and now >= valid_until:
        raise KeyOutsideValidity(f"key {key_id} of {owner} expired at {_iso(valid_until)}")


def check_freshness(
    event_time: dt.datetime, now: dt.datetime, *, max_age_s: float, max_future_skew_s: float
) -> None:
    """Refuse an event whose time lies outside [now - max_age, now + skew].

    With the inbox (which drops a repeated source + id), this bounds replays: an old
    event cannot come back under a new id (the id is signed), nor after its id is forgotten.
    """
    age_s = (now - event_time).total_seconds()
    if age_s > max_age_s:
        raise StaleEvent(
            f"event time {_iso(event_time)} is {age_s:.0f}s old; at most {max_age_s:.0f}s accepted"
        )
    if -age_s > max_future_skew_s:
        raise FutureEvent(
            f"event time {_iso(event_time)} is {-age_s:.0f}s in the future; "
            f"at most {max_future_skew_s:.0f}s of clock skew accepted"
        )


def _iso(moment: dt.datetime) -> str:
    return encode_value(moment)


def check_record_key(envelope: Envelope, key: bytes | None) -> None:
    """Refuse a record whose Kafka key is not the case id its signature covers.

    Every event of a case is keyed by the case id, which keeps a case on one partition and
    so in order; re-keying a signed record would move it off that order unnoticed. A record
    without a key is refused too: every producer of the hub keys its records.
    """
    if key != envelope.businessprocessid.encode():
        shown = key[:64].decode(errors="replace") if key is not None else "no key"
        raise MisroutedRecord(
            f"event {envelope.id[:128]} is keyed {shown!r}, not by its case "
            f"{envelope.businessprocessid[:128]!r}"
        )


class RegisteredKey(Protocol):
    """A partner's key as a service stores it (identity's register, the registry's mirror)."""

    @property
    def key_id(self) -> str: ...
    @property
    def partner_id(self) -> str: ...
    @property
    def public_key(self) -> str: ...
    @property
    def valid_from(self) -> dt.datetime: ...
    @property
    def valid_until(self) -> dt.datetime | None: ...
    @property
    def revoked_at(self) -> dt.datetime | None: ...


def verify_signed_by(
    headers: Headers,
    value: bytes,
    key: RegisteredKey | None,
    *,
    sender: str,
    now: dt.datetime,
    what: str = "event",
) -> None:
    """Refuse unless ``sender`` signed exactly this record with ``key``, usable at ``now``.

    ``headers`` and ``value`` are the record's as received. ``key`` is what the caller found
    under its ``ce_sigkeyid`` (None: nothing, or no key id at all). The order of the checks
    decides the reason an operator reads: not signed, unknown key, someone else's / revoked
    / expired key, then the signature.
    """
    claim = SignatureClaim.of(headers)
    if not claim.signed:
        raise UnsignedEvent(f"{what} {claim.event_id[:128]} of {sender} is not signed")
    if key is None:
        raise UnknownSigningKey(f"{what} {claim.event_id[:128]} names unknown key {claim.key_id}")
    check_key_usable(
        key_id=key.key_id,
        owner=key.partner_id,
        sender=sender,
        valid_from=key.valid_from,
        valid_until=key.valid_until,
        revoked_at=key.revoked_at,
        now=now,
    )
    PublicKey.from_base64(key.key_id, key.public_key).verify(headers, value)
