"""Partners' signing keys: ``RegisterPartnerKey`` and ``RevokePartnerKey`` from ``hub.admin``.

Identity owns the keys as it owns the partners; each change is announced on
``hub.identity.partners`` (keyed by partner, after the partner's own announcements) in
the same transaction, and the registry checks partner events against its mirror.
"""

from __future__ import annotations

import datetime as dt

from contracts.admin import RegisterPartnerKey, RevokePartnerKey
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.errors import PermanentError
from hub.runtime import topics
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from services.identity import partner_key_repository as keys
from services.identity import partner_repository as partners
from services.identity.admin import authorize
from services.identity.errors import IdentityError, UnknownPartner
from services.identity.partner_events import business_process_id
from services.identity.partner_key_repository import PartnerKey


class KeyConflict(IdentityError, PermanentError):
    """A key id or public key already stands for something else, or the key was revoked."""


class UnknownKey(IdentityError, PermanentError):
    """A revocation names a key that was never registered."""


async def register_partner_key(msg: Incoming[RegisterPartnerKey], tx: Transaction) -> None:
    await authorize(msg, tx)
    command = msg.data
    if await partners.get(tx, command.partner_id) is None:
        raise UnknownPartner(f"no partner {command.partner_id}; register it first")
    existing = await keys.get(tx, command.key_id, for_update=True)
    if existing is not None:
        _check_same_key(existing, command)
    else:
        holder = await keys.key_id_of(tx, command.public_key)
        if holder is not None:
            # One key, one id: otherwise revoking one id would leave the key usable under another.
            raise KeyConflict(f"this public key is already registered as {holder}")
    valid_from = command.valid_from or (existing.valid_from if existing else dt.datetime.now(dt.UTC))
    if command.valid_until is not None and command.valid_until <= valid_from:
        raise KeyConflict(f"key {command.key_id}: valid_until must be later than {valid_from.isoformat()}")
    key = await keys.upsert(
        tx,
        key_id=command.key_id,
        partner_id=command.partner_id,
        algorithm=command.algorithm,
        public_key=command.public_key,
        valid_from=valid_from,
        valid_until=command.valid_until,
    )
    await tx.emit(
        PartnerKeyRegistered(
            partner_id=key.partner_id,
            key_id=key.key_id,
            algorithm="ed25519",
            public_key=key.public_key,
            valid_from=key.valid_from,
            valid_until=key.valid_until,
        ),
        topic=topics.IDENTITY_PARTNERS,
        key=key.partner_id,
        business_process_id=business_process_id(key.partner_id),
        reference_id=msg.envelope.id,
    )


def _check_same_key(existing: PartnerKey, command: RegisterPartnerKey) -> None:
    if existing.partner_id != command.partner_id or existing.public_key != command.public_key:
        raise KeyConflict(f"key id {command.key_id} is taken by another key; choose a new key id")
    if existing.revoked_at is not None:
        raise KeyConflict(f"key {command.key_id} was revoked; a revoked key cannot be registered again")


async def revoke_partner_key(msg: Incoming[RevokePartnerKey], tx: Transaction) -> None:
    """Revoke at once; revoking again announces the first revocation again (idempotent)."""
    await authorize(msg, tx)
    command = msg.data
    existing = await keys.get(tx, command.key_id, for_update=True)
    if existing is None:
        raise UnknownKey(f"no key {command.key_id}")
    if existing.partner_id != command.partner_id:
        raise KeyConflict(f"key {command.key_id} does not belong to {command.partner_id}")
    key = (
        existing if existing.revoked_at is not None else await keys.revoke(tx, command.key_id, command.reason)
    )
    assert key.revoked_at is not None
    await tx.emit(
        PartnerKeyRevoked(
            partner_id=key.partner_id,
            key_id=key.key_id,
            revoked_at=key.revoked_at,
            reason=key.revocation_reason,
        ),
        topic=topics.IDENTITY_PARTNERS,
        key=key.partner_id,
        business_process_id=business_process_id(key.partner_id),
        reference_id=msg.envelope.id,
    )
