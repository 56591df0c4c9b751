"""Signed events (``docs/partners/signing.md``): the signed form, signing and verifying.

The signature covers a record exactly as it is on the wire: the bytes of the signed headers
that are present and a SHA-256 of the value, nothing re-encoded, nothing absent filled in::

    b"ch.lu.hub.event-signature.v2\\n"
    then, for every signed header, by name in ascending byte order,
        <name>:<length of the value in bytes>:<the value's bytes as sent>\\n
    then data-sha256:<lowercase hex SHA-256 of the value>\\n

Signed headers: every ``ce_`` header except ``ce_signature`` (so ``ce_sigkeyid`` too: the
key id cannot be swapped), and ``content-type`` (any case, written lower case). Other headers,
``traceparent`` and ``tracestate`` among them, are not signed and may be added after signing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from hub_partner.errors import AmbiguousHeaders, BadSignature, UnsignedEvent

SIGNED_FORM_VERSION = b"ch.lu.hub.event-signature.v2\n"
KEY_ID_HEADER = "ce_sigkeyid"
SIGNATURE_HEADER = "ce_signature"
CONTENT_TYPE_HEADER = "content-type"
# CloudEvents attribute names are lower-case ASCII letters and digits; with neither ":" nor a
# line break in a name, a line of the signed form can be read one way only.
_ATTRIBUTE_HEADER = re.compile(r"ce_[a-z0-9]+")
_SIGNATURE_BYTES = 64

Headers = Sequence[tuple[str, bytes]]
"""A Kafka record's headers as they travel: names, and values as bytes."""


def signed_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The headers the signature covers, each under its signed name, in signed order.

    Raises ``AmbiguousHeaders`` for a repeated signed header, one without a value, or a
    ``ce_`` name that is no CloudEvents attribute name.
    """
    chosen: dict[str, bytes] = {}
    for name, value in headers:
        signed_name = _signed_name(name)
        if signed_name is None:
            continue
        if signed_name in chosen:
            raise AmbiguousHeaders(f"header {signed_name} appears more than once")
        # Kafka lets a header be null (typed or not), which no line of the form could tell from empty.
        if not isinstance(value, bytes):
            raise AmbiguousHeaders(f"header {signed_name} has no value (null)")
        chosen[signed_name] = value
    return sorted(chosen.items(), key=lambda header: header[0].encode())


def _signed_name(name: str) -> str | None:
    if name.lower() == CONTENT_TYPE_HEADER:
        return CONTENT_TYPE_HEADER
    if not name.startswith("ce_") or name == SIGNATURE_HEADER:
        return None
    if not _ATTRIBUTE_HEADER.fullmatch(name):
        raise AmbiguousHeaders(f"header {name[:64]!r} is no CloudEvents attribute name")
    return name


def signed_form(headers: Headers, value: bytes | None) -> bytes:
    """The exact bytes a record's signature covers; a null value hashes zero bytes."""
    lines = [SIGNED_FORM_VERSION]
    for name, header_value in signed_headers(headers):
        lines.append(f"{name}:{len(header_value)}:".encode() + header_value + b"\n")
    lines.append(b"data-sha256:" + hashlib.sha256(value or b"").hexdigest().encode() + b"\n")
    return b"".join(lines)


def header_text(headers: Headers, name: str) -> str | None:
    """The last value of ``name`` as text, for messages and look-ups; never raises."""
    values = [value for key, value in headers if key == name]
    return (values[-1] or b"").decode("utf-8", errors="replace") if values else None


@dataclass(frozen=True)
class PublicKey:
    """A key id and the Ed25519 public key it names (the hub's: ``hub keys show --json``)."""

    key_id: str
    key: Ed25519PublicKey = field(repr=False)

    @classmethod
    def from_base64(cls, key_id: str, text: str) -> PublicKey:
        """From the 32 raw bytes in standard base64 (``public_key`` of ``hub keys show --json``)."""
        try:
            raw = base64.b64decode(text.strip(), validate=True)
        except binascii.Error:
            raise ValueError("public key is not base64") from None
        if len(raw) != 32:
            raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        return cls(key_id, Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def from_pem(cls, key_id: str, pem: bytes) -> PublicKey:
        key = load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"key {key_id} is no Ed25519 public key")
        return cls(key_id, key)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")

    def verify(self, headers: Headers, value: bytes | None) -> None:
        """Raise a ``SignatureRefused`` unless this key signed exactly these headers and value.

        ``headers`` and ``value`` are the record's as received, before any parsing.
        """
        event_id = header_text(headers, "ce_id") or "(no ce_id)"
        signatures = [v for name, v in headers if name == SIGNATURE_HEADER]
        key_ids = [v for name, v in headers if name == KEY_ID_HEADER]
        if not signatures or not key_ids:
            raise UnsignedEvent(f"event {event_id[:128]} is not signed (ce_sigkeyid and ce_signature)")
        if len(signatures) > 1:
            raise AmbiguousHeaders(f"event {event_id[:128]} carries {len(signatures)} signatures")
        key_id = header_text(headers, KEY_ID_HEADER) or ""
        if key_id != self.key_id:
            raise BadSignature(f"event names key {key_id[:128]}, not {self.key_id}")
        form = signed_form(headers, value)  # raises AmbiguousHeaders for a repeated ce_sigkeyid
        try:
            self.key.verify(_decode_signature(signatures[0], event_id), form)
        except InvalidSignature:
            raise BadSignature(
                f"signature of event {event_id[:128]} does not verify with key {self.key_id}: "
                "forged, or changed after signing"
            ) from None


def _decode_signature(encoded: bytes | None, event_id: str) -> bytes:
    try:
        raw = base64.b64decode(encoded or b"", validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != _SIGNATURE_BYTES:
        raise BadSignature(f"ce_signature of event {event_id[:128]} is not 64 bytes of base64")
    return raw


@dataclass(frozen=True)
class SigningKey:
    """The partner's private key with the id it is registered under at the hub.

    The key never appears in ``repr``, and so not in logs.
    """

    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, key_id: str, pem: bytes, password: bytes | None = None) -> SigningKey:
        """From a PKCS#8 PEM file, as ``openssl genpkey -algorithm ed25519`` writes it."""
        key = load_pem_private_key(pem, password=password)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"key {key_id} is no Ed25519 private key")
        return cls(key_id, key)

    @classmethod
    def from_seed(cls, key_id: str, seed: bytes) -> SigningKey:
        """From the 32-byte secret key of RFC 8032 (the test vectors give theirs in hex)."""
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.key_id, self.private_key.public_key())

    def sign_form(self, form: bytes) -> bytes:
        """The 64 signature bytes over a signed form (deterministic, as Ed25519 is)."""
        return self.private_key.sign(form)

    def sign_headers(self, headers: Headers, value: bytes | None) -> list[tuple[str, bytes]]:
        """The headers to send with ``value``: ``headers`` with this key's ``ce_sigkeyid`` and
        ``ce_signature`` in place of any earlier ones. Send them byte for byte as returned;
        only unsigned headers (``traceparent``, ``tracestate``) may be added afterwards."""
        unsigned = [(name, v) for name, v in headers if name not in (KEY_ID_HEADER, SIGNATURE_HEADER)]
        with_key_id: list[tuple[str, bytes]] = [*unsigned, (KEY_ID_HEADER, self.key_id.encode())]
        signature = self.sign_form(signed_form(with_key_id, value))
        return [*with_key_id, (SIGNATURE_HEADER, base64.b64encode(signature))]
