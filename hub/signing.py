"""Signed events: the canonical form, Ed25519 signatures and key ids.

A signed event carries two CloudEvents extension attributes: ``sigkeyid`` (which key
signed it, header ``ce_sigkeyid``) and ``signature`` (header ``ce_signature``, base64).
The signature is Ed25519 over the *canonical form*, version 1:

    b"ch.lu.hub.event-signature.v1\\n"
    then, for every context attribute present except ``signature``, sorted by name,
    ``<name>:<length of value in UTF-8 bytes>:<value>\\n``
    then ``data-sha256:<hex SHA-256 of the Kafka record value>\\n``

Values are written as on the wire (``contracts._headers.encode_value``: times in UTC with
``Z``, booleans ``true``/``false``). The length prefix makes the encoding unambiguous
whatever a value contains (a newline in a subject cannot fake a second attribute). The
key id is itself signed, so swapping ``ce_sigkeyid`` breaks the signature; so does
changing any attribute (id, source, type, time, case id, ...) or one byte of the value.
Partners in another language reproduce this with any Ed25519 library.
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
from hub.errors import PermanentError

CANONICAL_PREFIX = b"ch.lu.hub.event-signature.v1\n"
_NOT_SIGNED = frozenset({"signature"})


class SignatureRefused(PermanentError):
    """An event whose signature is missing or does not prove who sent it: refused, dead-lettered."""


class UnsignedEvent(SignatureRefused):
    """No signature (or only half of one: a key id without a signature, or the reverse)."""


class BadSignature(SignatureRefused):
    """The signature does not verify: forged with another key, or changed after signing."""


class UnknownSigningKey(SignatureRefused):
    """The key id is not registered (or not trusted, for deliveries)."""


class ForeignSigningKey(SignatureRefused):
    """The key belongs to another partner than the event's source."""


class MisroutedRecord(SignatureRefused):
    """Signed, but not for this place: the signature covers the CloudEvents attributes and
    the value, not the Kafka record's key or topic, so the key must be the signed case id
    and a delivery must name its reader as recipient (or a copy was moved or re-keyed)."""


class RevokedSigningKey(SignatureRefused):
    """The key was revoked; nothing signed with it is accepted any more."""


class KeyOutsideValidity(SignatureRefused):
    """The key has expired, or is not valid yet."""


class ReplayRefused(PermanentError):
    """An event outside the accepted time window: possibly replayed, refused, dead-lettered."""


class StaleEvent(ReplayRefused):
    """The event's ``time`` is older than the window allows."""


class FutureEvent(ReplayRefused):
    """The event's ``time`` lies further in the future than clock skew explains."""


def canonical_form(envelope: Envelope, value: bytes, *, key_id: str) -> bytes:
    """The bytes an event's signature covers (see the module docstring)."""
    attributes = envelope.model_dump(exclude_none=True, exclude=set(_NOT_SIGNED))
    attributes["sigkeyid"] = key_id
    parts = [CANONICAL_PREFIX]
    for name in sorted(attributes):
        encoded = encode_value(attributes[name]).encode("utf-8")
        parts.append(f"{name}:{len(encoded)}:".encode() + encoded + b"\n")
    parts.append(b"data-sha256:" + hashlib.sha256(value).hexdigest().encode() + b"\n")
    return b"".join(parts)


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

    def verify(self, envelope: Envelope, value: bytes) -> None:
        """Raise ``UnsignedEvent`` or ``BadSignature`` unless this key signed exactly this event."""
        if envelope.signature is None or envelope.sigkeyid is None:
            raise UnsignedEvent(f"event {envelope.id[:128]} is not signed (ce_sigkeyid and ce_signature)")
        if envelope.sigkeyid != self.key_id:
            raise BadSignature(f"event names key {envelope.sigkeyid}, not {self.key_id}")
        try:
            self.key.verify(
                base64.b64decode(envelope.signature), canonical_form(envelope, value, key_id=self.key_id)
            )
        except InvalidSignature:
            raise BadSignature(
                f"signature of event {envelope.id[:128]} does not verify with key {self.key_id}: "
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

    def signature(self, envelope: Envelope, value: bytes) -> str:
        raw = self.private_key.sign(canonical_form(envelope, value, key_id=self.key_id))
        return base64.b64encode(raw).decode("ascii")

    def sign(self, envelope: Envelope, value: bytes) -> Envelope:
        """``envelope`` with ``sigkeyid`` and ``signature`` for the record value ``value``."""
        return envelope.model_copy(
            update={"sigkeyid": self.key_id, "signature": self.signature(envelope, value)}
        )


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
    envelope: Envelope,
    value: bytes,
    key: RegisteredKey | None,
    *,
    sender: str,
    now: dt.datetime,
    what: str = "event",
) -> None:
    """Refuse unless ``sender`` signed exactly this record with ``key``, usable at ``now``.

    ``key`` is what the caller found under the envelope's ``sigkeyid`` (None: nothing, or
    no key id at all). The order of the checks decides the reason an operator reads: not
    signed, unknown key, someone else's / revoked / expired key, then the signature.
    """
    if envelope.sigkeyid is None or envelope.signature is None:
        raise UnsignedEvent(f"{what} {envelope.id[:128]} of {sender} is not signed")
    if key is None:
        raise UnknownSigningKey(f"{what} {envelope.id[:128]} names unknown key {envelope.sigkeyid}")
    check_key_usable(
        key_id=key.key_id,
        owner=key.partner_id,
        sender=sender,
        valid_from=key.valid_from,
        valid_until=key.valid_until,
        revoked_at=key.revoked_at,
        now=now,
    )
    PublicKey.from_base64(key.key_id, key.public_key).verify(envelope, value)
