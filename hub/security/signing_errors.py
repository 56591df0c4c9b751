"""Why a signed event is refused: one class per reason an operator or a partner reads.

``SignatureRefused``: the signature does not prove who sent the record; ``ReplayRefused``:
it lies outside the accepted time window. Both are permanent: the record is dead-lettered
with its reason, never retried.
"""

from __future__ import annotations

from hub.errors import PermanentError


class SignatureRefused(PermanentError):
    """An event whose signature is missing or does not prove who sent it: refused, dead-lettered."""


class UnsignedEvent(SignatureRefused):
    """No signature (or only half of one: a key id without a signature, or the reverse)."""


class BadSignature(SignatureRefused):
    """The signature does not verify: forged with another key, or changed after signing."""


class AmbiguousHeaders(BadSignature):
    """Headers a signature cannot pin down: a signed header repeated, or a ``ce_`` header whose
    name is no CloudEvents attribute name. Refused whether or not the signature verifies."""


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
