"""Partners' signing keys in the registry: the mirror, and the check of every partner event.

The mirror follows identity's ``PartnerKeyRegistered`` / ``PartnerKeyRevoked``. A
partner event on its ingress topic is accepted only if it is signed (unless signatures
are switched off), with a registered key of its sender, inside that key's window and not
revoked, keyed by the case id it signs, and if its time lies inside the replay window
(for an event an operator redrove, the time of the redrive: hub.security.redrive_attestation).
Each refusal is a ``PermanentError`` subclass with the reason: the consumer dead-letters
and records it, and the event never reaches routing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from hub.runtime.settings import HubSettings
from hub.security.operator_keys import TrustedKeys, trusted_operator_keys
from hub.security.redrive_attestation import attested_redrive
from hub.security.signing import check_freshness, check_record_key, verify_signed_by


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


@dataclass(frozen=True)
class MirroredKey:
    key_id: str
    partner_id: str
    public_key: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None


async def verify_partner_event(
    tx: Transaction, msg: Incoming[Any], partner_id: str, policy: IngressPolicy
) -> None:
    """Refuse ``msg`` unless ``partner_id`` provably sent it, recently."""
    now = dt.datetime.now(dt.UTC)
    envelope = msg.envelope
    if envelope.sigkeyid is not None or envelope.signature is not None or policy.require_signatures:
        key = await find_key(tx, envelope.sigkeyid) if envelope.sigkeyid is not None else None
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


async def find_key(tx: Transaction, key_id: str) -> MirroredKey | None:
    row = await tx.conn.fetchrow(
        "SELECT key_id, partner_id, public_key, valid_from, valid_until, revoked_at"
        " FROM partner_keys WHERE key_id = $1",
        key_id,
    )
    if row is None:
        return None
    return MirroredKey(
        row["key_id"],
        row["partner_id"],
        row["public_key"],
        row["valid_from"],
        row["valid_until"],
        row["revoked_at"],
    )


async def mirror_key_registered(msg: Incoming[PartnerKeyRegistered], tx: Transaction) -> None:
    """Insert the key or update its window; a revocation already mirrored stays."""
    key = msg.data
    await tx.conn.execute(
        """
        INSERT INTO partner_keys (key_id, partner_id, algorithm, public_key, valid_from, valid_until)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (key_id) DO UPDATE SET partner_id = $2, algorithm = $3, public_key = $4,
            valid_from = $5, valid_until = $6, updated_at = now()
        """,
        key.key_id,
        key.partner_id,
        key.algorithm,
        key.public_key,
        key.valid_from,
        key.valid_until,
    )


async def mirror_key_revoked(msg: Incoming[PartnerKeyRevoked], tx: Transaction) -> None:
    # coalesce: the first revocation's time stands if the announcement is repeated.
    await tx.conn.execute(
        "UPDATE partner_keys SET revoked_at = coalesce(revoked_at, $2), updated_at = now() WHERE key_id = $1",
        msg.data.key_id,
        msg.data.revoked_at,
    )
