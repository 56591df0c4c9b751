"""An operator's word that a redriven event may be processed although its time is old.

A partner event is accepted only inside the replay window (``HUB_EVENT_MAX_AGE_S``): an
old signed event arriving again looks exactly like a replay. A dead letter that an
operator redrives (``hub dlq redrive``) is such an old event, so it would be refused
again. The redrive therefore attaches an attestation in the header ``hub-redrive``:

    <operator key id> <redriven at, ISO 8601 UTC> <Ed25519 signature, base64>

signed with the operator's key (``hub.security.operator_keys``) over

    b"ch.lu.hub.redrive-attestation.v1\\n"
    then ``<name>:<length in UTF-8 bytes>:<value>\\n`` for ``id``, ``source`` and
    ``redrivenat``, in this order

The registry then measures the window from the redrive instead of the event's own time,
if a trusted operator key signed the attestation for this very event (``id`` and
``source``; the partner's signature still proves the rest). The attestation is not a
CloudEvents attribute, so the partner's signature over the ``ce_*`` attributes stays
intact. A copied attestation is worthless elsewhere (it names one event id), and the
event itself is processed at most once (the inbox deduplicates by ``ce_id``), so a
replay of the redriven record changes nothing either.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature

from contracts import Envelope
from hub.security.signing import BadSignature, PublicKey, SigningKey, UnknownSigningKey

HEADER = "hub-redrive"
_PREFIX = b"ch.lu.hub.redrive-attestation.v1\n"


def _signed_bytes(event_id: str, source: str, redriven_at: dt.datetime) -> bytes:
    parts = [_PREFIX]
    for name, value in (("id", event_id), ("source", source), ("redrivenat", _iso(redriven_at))):
        encoded = value.encode()
        parts.append(f"{name}:{len(encoded)}:".encode() + encoded + b"\n")
    return b"".join(parts)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def attest(key: SigningKey, *, event_id: str, source: str, redriven_at: dt.datetime) -> str:
    """The header value saying that ``key``'s operator redrove this event at ``redriven_at``."""
    signature = key.private_key.sign(_signed_bytes(event_id, source, redriven_at))
    return f"{key.key_id} {_iso(redriven_at)} {base64.b64encode(signature).decode('ascii')}"


def attested_redrive(
    headers: Sequence[tuple[str, bytes]],
    envelope: Envelope,
    trusted: Callable[[], Mapping[str, PublicKey]],
) -> dt.datetime | None:
    """When a trusted operator redrove this event, or None if the record carries no attestation.

    ``trusted`` is asked only for a record that carries one: the set may be read from files.

    An attestation that is malformed, names an untrusted key or does not verify for this
    event is refused (``BadSignature`` / ``UnknownSigningKey``): it is someone's attempt
    to pass an old event off as redriven.
    """
    values = [value for name, value in headers if name == HEADER]
    if not values:
        return None
    if len(values) > 1:
        raise BadSignature(f"event {envelope.id[:128]} carries {len(values)} redrive attestations")
    try:
        key_id, when, signature = values[0].decode("ascii").split(" ")
        redriven_at = dt.datetime.fromisoformat(when)
        raw = base64.b64decode(signature, validate=True)
    except (UnicodeDecodeError, ValueError, binascii.Error):
        raise BadSignature(f"redrive attestation of event {envelope.id[:128]} is malformed") from None
    if redriven_at.tzinfo is None:
        raise BadSignature(f"redrive attestation of event {envelope.id[:128]} has no time zone")
    key = trusted().get(key_id)
    if key is None:
        raise UnknownSigningKey(
            f"event {envelope.id[:128]} was redriven under {key_id[:128]}, not a trusted operator key"
        )
    try:
        key.key.verify(raw, _signed_bytes(envelope.id, envelope.source, redriven_at))
    except InvalidSignature:
        raise BadSignature(
            f"redrive attestation of event {envelope.id[:128]} does not verify with {key_id}: "
            "forged, or made for another event"
        ) from None
    return redriven_at
