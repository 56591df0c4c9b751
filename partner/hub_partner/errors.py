"""Why the client refuses a delivery: one class per reason, named as the hub names them.

The names match the reasons in ``docs/partners/signing.md`` (section 6), so a partner's log
reads the same words as the hub's audit log. All are ``DeliveryRefused``: permanent, a
refused record would fail the same way again, so its offset is committed and it is skipped.
"""

from __future__ import annotations


class DeliveryRefused(Exception):
    """A record on the partner's delivery topic that the hub did not provably send to it."""


class SignatureRefused(DeliveryRefused):
    """The signature is missing or does not prove that the hub sent the record."""


class UnsignedEvent(SignatureRefused):
    """No signature, or only half of one (a key id without a signature, or the reverse)."""


class BadSignature(SignatureRefused):
    """The signature does not verify: forged with another key, or changed after signing."""


class AmbiguousHeaders(BadSignature):
    """Headers a signature cannot pin down: a signed header repeated, without a value, or a
    ``ce_`` header whose name is no CloudEvents attribute name."""


class UnknownSigningKey(SignatureRefused):
    """Signed with a key id that is not one of the hub keys the partner trusts."""


class MisroutedRecord(SignatureRefused):
    """Genuinely signed, but not for this place: the signature covers the attributes and the
    value, not the Kafka key or topic, so a copy moved to another partner's topic or re-keyed
    still verifies. Its Kafka key must be the signed case id and its recipient this partner."""
