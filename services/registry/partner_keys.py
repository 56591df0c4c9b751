"""Partners' signing keys in the registry: the mirror, and the check of every partner event.

The mirror follows identity's ``PartnerKeyRegistered`` / ``PartnerKeyRevoked``. A
partner event on its ingress topic is accepted only if it is signed (unless signatures
are switched off), with a registered key of its sender, inside that key's window and not
revoked, keyed by the case id it signs, and if its time lies inside the replay window
(for an event an operator redrove, the time of the redrive: hub.security.redrive_attestation).
Each refusal is a ``PermanentError`` subclass with the reason: the consumer dead-letters
and records it, and the event never reaches routing.

The checks themselves (``check_partner_event``, ``proves_sender``) are pure: they get the
key the caller looked up; ``verify_partner_event`` looks it up through the unit of work.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.runtime.messages import Incoming
from hub.runtime.settings import HubSettings
from hub.security.operator_keys import TrustedKeys, trusted_operator_keys
from hub.security.redrive_attestation import attested_redrive
from hub.security.signed_form import Headers
from hub.security.signing import SignatureRefused, check_freshness, check_record_key, verify_signed_by
from services.registry.model import PartnerKey
from services.registry.ports import UnitOfWork


@dataclass(frozen=True)
class IngressPolicy:
    """What the registry demands of partner events (``HUB_REQUIRE_SIGNATURES`` and the window)."""

    require_signatures: bool
    max_age_s: float
    max_future_skew_s: float
    # The operator keys whose redrive attestations move the window (hub.security.redrive_attestation).
    trusted_operators: Callable[[], TrustedKeys] = dict

    @classmethod
    def from_settings(cls, settings: HubSettings) -> IngressPolicy:
        return cls(
            require_signatures=settings.require_signatures,
            max_age_s=settings.event_max_age_s,
            max_future_skew_s=settings.event_max_future_skew_s,
            trusted_operators=functools.partial(trusted_operator_keys, settings),
        )


def check_partner_event(
    msg: Incoming[Any], key: PartnerKey | None, partner_id: str, policy: IngressPolicy, now: dt.datetime
) -> None:
    """Refuse ``msg`` unless ``partner_id`` provably sent it, recently. ``key``: what the
    mirror holds under the event's ``ce_sigkeyid`` (None: nothing, or no key id)."""
    envelope = msg.envelope
    if envelope.sigkeyid is not None or envelope.signature is not None or policy.require_signatures:
        verify_signed_by(msg.headers, msg.value, key, sender=partner_id, now=now)
        check_record_key(envelope, msg.key)
    # The time is checked after the signature: only then is it the sender's own statement.
    # An event an operator redrove from the dead letters is as fresh as its redrive.
    redriven_at = attested_redrive(msg.headers, envelope, policy.trusted_operators)
    check_freshness(
        redriven_at or envelope.time,
        now,
        max_age_s=policy.max_age_s,
        max_future_skew_s=policy.max_future_skew_s,
    )


async def verify_partner_event(
    uow: UnitOfWork, msg: Incoming[Any], partner_id: str, policy: IngressPolicy
) -> None:
    """``check_partner_event`` with the key the event names, from the registry's mirror."""
    sigkeyid = msg.envelope.sigkeyid
    key = await uow.partner_keys.find(sigkeyid) if sigkeyid is not None else None
    check_partner_event(msg, key, partner_id, policy, dt.datetime.now(dt.UTC))


def proves_sender(headers: Headers, value: bytes, key: PartnerKey, sender: str, now: dt.datetime) -> bool:
    """Whether ``key``, usable by ``sender`` at ``now``, signed exactly this record."""
    try:
        verify_signed_by(headers, value, key, sender=sender, now=now)
    except (SignatureRefused, ValueError):
        return False
    return True


async def mirror_key_registered(msg: Incoming[PartnerKeyRegistered], uow: UnitOfWork) -> None:
    """Insert the key or update its window; a revocation already mirrored stays."""
    key = msg.data
    await uow.partner_keys.register(
        PartnerKey(
            key_id=key.key_id,
            partner_id=key.partner_id,
            public_key=key.public_key,
            valid_from=key.valid_from,
            valid_until=key.valid_until,
            algorithm=key.algorithm,
        )
    )


async def mirror_key_revoked(msg: Incoming[PartnerKeyRevoked], uow: UnitOfWork) -> None:
    # The first revocation's time stands if the announcement is repeated.
    await uow.partner_keys.revoke(msg.data.key_id, msg.data.revoked_at)
