"""Partners' signing keys: ``RegisterPartnerKey`` and ``RevokePartnerKey`` from ``hub.admin``.

Identity owns the keys as it owns the partners; each change is announced on
``hub.identity.partners`` (keyed by partner, after the partner's own announcements) in
the same transaction, and the registry checks partner events against its mirror.
"""

from __future__ import annotations

import datetime as dt

from contracts.admin import RegisterPartnerKey, RevokePartnerKey
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.runtime import topics
from hub.runtime.messages import Incoming
from services.identity.domain import check_key_registration, key_window
from services.identity.errors import KeyConflict, UnknownKey, UnknownPartner
from services.identity.handlers_admin import authorize
from services.identity.partner_events import business_process_id
from services.identity.ports import UnitOfWork


async def register_partner_key(msg: Incoming[RegisterPartnerKey], uow: UnitOfWork) -> None:
    await authorize(msg, uow)
    command = msg.data
    if await uow.partners.get(command.partner_id) is None:
        raise UnknownPartner(f"no partner {command.partner_id}; register it first")
    existing = await uow.partner_keys.get(command.key_id, for_update=True)
    holder = await uow.partner_keys.key_id_of(command.public_key) if existing is None else None
    check_key_registration(existing, holder, command)
    key = await uow.partner_keys.upsert(
        key_id=command.key_id,
        partner_id=command.partner_id,
        algorithm=command.algorithm,
        public_key=command.public_key,
        valid_from=key_window(existing, command, dt.datetime.now(dt.UTC)),
        valid_until=command.valid_until,
    )
    await uow.emitter.emit(
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


async def revoke_partner_key(msg: Incoming[RevokePartnerKey], uow: UnitOfWork) -> None:
    """Revoke at once; revoking again announces the first revocation again (idempotent)."""
    await authorize(msg, uow)
    command = msg.data
    existing = await uow.partner_keys.get(command.key_id, for_update=True)
    if existing is None:
        raise UnknownKey(f"no key {command.key_id}")
    if existing.partner_id != command.partner_id:
        raise KeyConflict(f"key {command.key_id} does not belong to {command.partner_id}")
    key = (
        existing
        if existing.revoked_at is not None
        else await uow.partner_keys.revoke(command.key_id, command.reason)
    )
    assert key.revoked_at is not None
    await uow.emitter.emit(
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
