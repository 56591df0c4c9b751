"""The signed form: the exact bytes an event's Ed25519 signature covers.

A signed record carries two CloudEvents extension attributes as Kafka headers:
``ce_sigkeyid`` (which key signed it) and ``ce_signature`` (Ed25519, standard base64 with
padding). The signature covers the record as it is on the wire, never as the hub parses
it: a partner that writes ``ce_time`` with milliseconds, or leaves out an attribute the
hub would default, has signed exactly what it sent. The signed form, version 2
(``docs/partners/signing.md`` is the normative text, with test vectors):

    b"ch.lu.hub.event-signature.v2\\n"
    then, for every signed header, by name in ascending byte order,
        ``<name>:<length of the value in bytes>:<the value's bytes as received>\\n``
    then ``data-sha256:<lowercase hex SHA-256 of the record value>\\n``

The signed headers are every header whose name starts with ``ce_`` except
``ce_signature``, and ``content-type`` (its name matched in any case, written in lower
case). Those are all the headers the hub reads attributes from, so nothing it acts on
escapes the signature; other headers (``traceparent``, an operator's ``hub-redrive``) are
not signed. The key id is a ``ce_`` header too, so swapping ``ce_sigkeyid`` breaks the
signature; so does adding, removing or changing any signed header or one byte of the
value. The length prefix keeps a value from faking another line; names cannot, as a
``ce_`` name must be a CloudEvents attribute name (lower-case letters and digits) and a
repeated signed header is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from contracts._headers import CONTENT_TYPE_HEADER
from hub.security.signing_errors import AmbiguousHeaders, BadSignature

SIGNED_FORM_VERSION = b"ch.lu.hub.event-signature.v2\n"
KEY_ID_HEADER = "ce_sigkeyid"
SIGNATURE_HEADER = "ce_signature"
ATTRIBUTE_HEADER_PREFIX = "ce_"
# CloudEvents attribute names are lower-case ASCII letters and digits; with neither ":"
# nor a line break in a name, the signed form's lines cannot be read two ways.
_ATTRIBUTE_HEADER = re.compile(r"ce_[a-z0-9]+")

Headers = Sequence[tuple[str, bytes]]
"""A Kafka record's headers as they arrive: names, and values as bytes."""


def signed_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """The headers a signature covers, each under its signed name, in signed order.

    Raises ``AmbiguousHeaders`` for a repeated signed header (which value would be meant?),
    one without a value, or a ``ce_`` name that could not be written unambiguously.
    """
    chosen: dict[str, bytes] = {}
    for name, value in headers:
        signed_name = _signed_name(name)
        if signed_name is None:
            continue
        if signed_name in chosen:
            raise AmbiguousHeaders(f"header {signed_name} appears more than once")
        if not isinstance(value, bytes):  # Kafka lets a header be null, which no line could tell from empty
            raise AmbiguousHeaders(f"header {signed_name} has no value (null)")
        chosen[signed_name] = value
    return sorted(chosen.items(), key=lambda header: header[0].encode())


def _signed_name(name: str) -> str | None:
    """``name`` as the signed form writes it, or None for a header that is not signed."""
    if name.lower() == CONTENT_TYPE_HEADER:
        return CONTENT_TYPE_HEADER
    if not name.startswith(ATTRIBUTE_HEADER_PREFIX) or name == SIGNATURE_HEADER:
        return None
    if not _ATTRIBUTE_HEADER.fullmatch(name):
        raise AmbiguousHeaders(
            f"header {name[:64]!r} is no CloudEvents attribute (ce_ and lower-case letters or digits)"
        )
    return name


def canonical_form(headers: Headers, value: bytes) -> bytes:
    """The bytes a record's signature covers (see the module docstring)."""
    parts = [SIGNED_FORM_VERSION]
    for name, header_value in signed_headers(headers):
        parts.append(f"{name}:{len(header_value)}:".encode() + header_value + b"\n")
    parts.append(b"data-sha256:" + hashlib.sha256(value).hexdigest().encode() + b"\n")
    return b"".join(parts)


@dataclass(frozen=True)
class SignatureClaim:
    """What a record's headers say about its signature; nothing checked yet."""

    event_id: str
    key_id: str | None
    signature: bytes | None

    @classmethod
    def of(cls, headers: Headers) -> SignatureClaim:
        signatures = [value for name, value in headers if name == SIGNATURE_HEADER]
        event_id = _text(headers, "ce_id") or "(no ce_id)"
        if len(signatures) > 1:
            raise AmbiguousHeaders(f"event {event_id[:128]} carries {len(signatures)} signatures")
        return cls(event_id, _text(headers, KEY_ID_HEADER), signatures[0] if signatures else None)

    @property
    def signed(self) -> bool:
        return self.key_id is not None and self.signature is not None

    def raw_signature(self) -> bytes:
        """The 64 signature bytes; ``BadSignature`` for anything else in ``ce_signature``."""
        try:
            raw = base64.b64decode(self.signature or b"", validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 64:
            raise BadSignature(f"ce_signature of event {self.event_id[:128]} is not 64 bytes of base64")
        return raw


def _text(headers: Headers, name: str) -> str | None:
    """The last value of ``name`` as text for messages and lookups; never raises."""
    values = [value for key, value in headers if key == name]
    return (values[-1] or b"").decode("utf-8", errors="replace") if values else None
