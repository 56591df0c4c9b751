"""Keeping the registry's view of partners and subscriptions current.

Partners belong to the identity service; the registry mirrors what routing needs from
identity's partner events. Subscriptions belong to the registry and change through
``SetSubscription`` commands on ``hub.admin`` (the CLI publishes them), applied only if a
trusted operator signed them (``hub.security.operator_keys``) or an active operations partner did,
with its own registered key.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from contracts import SetSubscription
from hub.runtime.messages import Incoming
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic, ingress_topic
from hub.security.operator_keys import ADMIN_CLI_SOURCE, CommandPolicy
from services.registry.domain import Processes
from services.registry.errors import NotAuthorized, UnknownSlot
from services.registry.model import Partner, SubscriptionRecord, claimed_partner
from services.registry.parties import fill_open_slots
from services.registry.partner_keys import IngressPolicy, verify_partner_event
from services.registry.ports import UnitOfWork
from services.registry.subscriptions_domain import undefined_slot

# The role identity lets administer partners; the same role may change subscriptions.
OPERATIONS_ROLE = "operations"
SubscriptionHandler = Callable[[Incoming[SetSubscription], UnitOfWork], Awaitable[None]]


def subscription_handler(settings: HubSettings, processes: Processes) -> SubscriptionHandler:
    """``set_subscription`` with the checks of ``settings`` (signatures, replay window, operator
    keys) and the case types' slots."""
    return functools.partial(
        set_subscription,
        operators=CommandPolicy.from_settings(settings),
        partners=IngressPolicy.from_settings(settings),
        processes=processes,
    )


async def set_subscription(
    msg: Incoming[SetSubscription],
    uow: UnitOfWork,
    *,
    operators: CommandPolicy,
    partners: IngressPolicy,
    processes: Processes,
) -> None:
    await authorize(msg, uow, operators=operators, partners=partners)
    command = msg.data
    if (why := undefined_slot(processes, command.case_type, command.slot)) is not None:
        raise UnknownSlot(why)
    await uow.subscriptions.put(
        SubscriptionRecord(
            partner_id=command.partner_id,
            event_type=command.subscribed_event_type,
            case_type=command.case_type,
            purpose=command.purpose,
            legal_basis=command.legal_basis,
            legal_basis_url=command.legal_basis_url,
            fields=command.fields,
            retention_days=command.retention_days,
            status=command.status,
            scope=command.scope,
            slot=command.slot,
        )
    )


async def authorize(
    msg: Incoming[Any], uow: UnitOfWork, *, operators: CommandPolicy, partners: IngressPolicy
) -> None:
    """A trusted operator's signature, or an active operations partner's; anything else is refused.

    A partner without the right is refused before its signature is looked at (refusing on
    an unproven claim is safe); nothing is applied before a signature is checked.
    """
    source = msg.envelope.source
    if source == ADMIN_CLI_SOURCE:
        operators.verify_operator_command(msg.headers, msg.value)
        return
    partner_id = claimed_partner(source)
    partner = await uow.partners.get(partner_id) if partner_id is not None else None
    if partner is None or not partner.active or OPERATIONS_ROLE not in partner.roles:
        raise NotAuthorized(f"{source[:200]} may not change subscriptions")
    await verify_partner_event(uow, msg, partner.partner_id, partners)


CreateTopic = Callable[[str], Awaitable[None]]


async def mirror_partner(msg: Incoming[Any], uow: UnitOfWork, *, create_topic: CreateTopic) -> None:
    """PartnerRegistered from identity: insert or update the routing view, with the
    partner's jurisdiction, which decides the case slots it fills.

    A partner registered while the hub runs gets its delivery topic now, before the first
    delivery to it sits in the outbox (clusters without topic auto-creation would refuse
    it), and its ingress topic, which the registry's pattern subscription picks up within
    seconds. Creating is idempotent, so a redelivered announcement does no harm.
    """
    partner = msg.data
    await create_topic(delivery_topic(partner.partner_id))
    await create_topic(ingress_topic(partner.partner_id))
    await uow.partners.put(
        Partner(
            partner_id=partner.partner_id,
            name=partner.name,
            sector=str(partner.sector),
            roles=tuple(partner.roles),
            delivery_topic=delivery_topic(partner.partner_id),
            status=partner.status,
            jurisdiction=partner.jurisdiction,
            local_person_id_category=partner.local_person_id_category,
            sedex_id=partner.sedex_id,
        )
    )
    # A partner new to the register (or now with the jurisdiction an open case needs) takes
    # the unfilled slots it fits.
    await fill_open_slots(uow, partner.partner_id)


async def mirror_partner_status(msg: Incoming[Any], uow: UnitOfWork) -> None:
    await uow.partners.set_status(msg.data.partner_id, msg.data.status)
    if msg.data.status == "active":
        await fill_open_slots(uow, msg.data.partner_id)
