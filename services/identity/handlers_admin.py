"""Partner administration: ``RegisterPartner`` and ``ChangePartnerStatus`` from ``hub.admin``.

Identity owns the partner register; every change is announced on
``hub.identity.partners`` in the same transaction, so the registry's routing view
follows the register and never sees a change that was rolled back.

Who sent a command is proven before any handler runs (``verified``): a trusted
operator's signature for the CLI's source (``hub.security.operator_keys``), the partner's own
registered key for an operations partner, as the registry checks partner events.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from contracts.admin import ChangePartnerStatus, RegisterPartner
from hub.runtime.messages import Incoming
from hub.runtime.settings import HubSettings
from hub.security.operator_keys import CommandPolicy
from hub.security.signing import verify_signed_by
from services.identity.domain import ADMIN_CLI_SOURCE, may_administer, partner_of_source
from services.identity.errors import NotAuthorized, UnknownPartner
from services.identity.partner_events import announce_registered, announce_status
from services.identity.ports import UnitOfWork


async def register_partner(msg: Incoming[RegisterPartner], uow: UnitOfWork) -> None:
    """Create or update the partner (idempotent) and announce it again."""
    await authorize(msg, uow)
    partner = await uow.partners.upsert(msg.data)
    await announce_registered(uow, partner, reference_id=msg.envelope.id)


async def change_partner_status(msg: Incoming[ChangePartnerStatus], uow: UnitOfWork) -> None:
    await authorize(msg, uow)
    command = msg.data
    current = await uow.partners.get(command.partner_id, for_update=True)
    if current is None:
        raise UnknownPartner(f"no partner {command.partner_id}; register it first")
    if not current.announced:
        # A seeded partner the announcer has not reached yet: the registry must know the
        # partner before it learns its status, and both go out in this order (same key).
        await announce_registered(uow, current)
    changed = await uow.partners.set_status(command.partner_id, command.status, command.reason)
    assert changed is not None  # locked above
    await announce_status(uow, changed, command.reason, reference_id=msg.envelope.id)


async def authorize(msg: Incoming[Any], uow: UnitOfWork) -> str | None:
    """The hub's own CLI (None), or an active partner with the operations role (its id)."""
    source = msg.envelope.source
    if source == ADMIN_CLI_SOURCE:
        return None
    partner_id = partner_of_source(source)
    sender = await uow.partners.get(partner_id) if partner_id is not None else None
    if sender is None or not may_administer(sender.roles, sender.status):
        raise NotAuthorized(f"{source[:200]} may not administer partners")
    return sender.partner_id


Handler = Callable[[Incoming[Any], UnitOfWork], Awaitable[None]]


def verified_handlers(settings: HubSettings, handlers: Mapping[str, Handler]) -> dict[str, Handler]:
    """Each handler of ``hub.admin`` behind the proof of who sent the command."""
    policy = CommandPolicy.from_settings(settings)
    return {event_type: verified(handler, policy) for event_type, handler in handlers.items()}


def verified(handler: Handler, policy: CommandPolicy) -> Handler:
    @functools.wraps(handler)
    async def checked(msg: Incoming[Any], uow: UnitOfWork) -> None:
        await verify_sender(msg, uow, policy)
        await handler(msg, uow)

    return checked


async def verify_sender(msg: Incoming[Any], uow: UnitOfWork, policy: CommandPolicy) -> None:
    """Refuse (``SignatureRefused``, ``ReplayRefused``, ``NotAuthorized``) a command not provably
    sent by a trusted operator or an operations partner.

    A partner without the right is refused before its signature is looked at, as on
    ``hub.ingress``: refusing on an unproven claim is safe, accepting on one is not.
    """
    partner_id = await authorize(msg, uow)
    if partner_id is None:
        policy.verify_operator_command(msg.headers, msg.value)
    else:
        await _verify_partner_signature(msg, uow, partner_id, policy)


async def _verify_partner_signature(
    msg: Incoming[Any], uow: UnitOfWork, partner_id: str, policy: CommandPolicy
) -> None:
    """The partner's registered key (identity holds the originals of the registry's mirror)."""
    envelope = msg.envelope
    if envelope.sigkeyid is not None or envelope.signature is not None or policy.require_signatures:
        key = await uow.partner_keys.get(envelope.sigkeyid) if envelope.sigkeyid is not None else None
        verify_signed_by(
            msg.headers, msg.value, key, sender=partner_id, now=dt.datetime.now(dt.UTC), what="admin command"
        )
    policy.check_time(envelope)
