"""Partner administration: ``RegisterPartner`` and ``ChangePartnerStatus`` from ``hub.admin``.

Identity owns the partner register; every change is announced on
``hub.identity.partners`` in the same transaction, so the registry's routing view
follows the register and never sees a change that was rolled back.
"""

from __future__ import annotations

from typing import Any

from contracts.admin import ChangePartnerStatus, RegisterPartner
from hub.messages import Incoming, Transaction
from services.identity import partner_repository as partners
from services.identity.domain import ADMIN_CLI_SOURCE, may_administer, partner_of_source
from services.identity.errors import NotAuthorized, UnknownPartner
from services.identity.partner_events import announce_registered, announce_status


async def register_partner(msg: Incoming[RegisterPartner], tx: Transaction) -> None:
    """Create or update the partner (idempotent) and announce it again."""
    await authorize(msg, tx)
    partner = await partners.upsert(tx, msg.data)
    await announce_registered(tx, partner, reference_id=msg.envelope.id)


async def change_partner_status(msg: Incoming[ChangePartnerStatus], tx: Transaction) -> None:
    await authorize(msg, tx)
    command = msg.data
    current = await partners.get(tx, command.partner_id, for_update=True)
    if current is None:
        raise UnknownPartner(f"no partner {command.partner_id}; register it first")
    if not current.announced:
        # A seeded partner the announcer has not reached yet: the registry must know the
        # partner before it learns its status, and both go out in this order (same key).
        await announce_registered(tx, current)
    changed = await partners.set_status(tx, command.partner_id, command.status, command.reason)
    assert changed is not None  # locked above
    await announce_status(tx, changed, command.reason, reference_id=msg.envelope.id)


async def authorize(msg: Incoming[Any], tx: Transaction) -> None:
    """The hub's own CLI, or an active partner with the operations role."""
    source = msg.envelope.source
    if source == ADMIN_CLI_SOURCE:
        return
    partner_id = partner_of_source(source)
    sender = await partners.get(tx, partner_id) if partner_id is not None else None
    if sender is None or not may_administer(sender.roles, sender.status):
        raise NotAuthorized(f"{source[:200]} may not administer partners")
