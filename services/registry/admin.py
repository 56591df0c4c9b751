"""Keeping the registry's view of partners and subscriptions current.

Partners belong to the identity service; the registry mirrors what routing needs from
identity's partner events. Subscriptions belong to the registry and change through
``SetSubscription`` commands on ``hub.admin`` (the CLI publishes them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from contracts import SetSubscription
from hub.messages import Incoming, Transaction
from hub.topics import delivery_topic
from services.registry import repository as repo


async def set_subscription(msg: Incoming[SetSubscription], tx: Transaction) -> None:
    command = msg.data
    await repo.upsert_subscription(
        tx,
        partner_id=command.partner_id,
        event_type=command.subscribed_event_type,
        case_type=command.case_type,
        purpose=command.purpose,
        legal_basis=command.legal_basis,
        legal_basis_url=command.legal_basis_url,
        fields=command.fields,
        retention_days=command.retention_days,
        status=command.status,
    )


CreateTopic = Callable[[str], Awaitable[None]]


async def mirror_partner(msg: Incoming[Any], tx: Transaction, *, create_topic: CreateTopic) -> None:
    """PartnerRegistered from identity: insert or update the routing view.

    A partner registered while the hub runs gets its delivery topic now, before the first
    delivery to it sits in the outbox (clusters without topic auto-creation would refuse
    it). Creating is idempotent, so a redelivered announcement does no harm.
    """
    partner = msg.data
    await create_topic(delivery_topic(partner.partner_id))
    await repo.upsert_partner(
        tx,
        partner_id=partner.partner_id,
        name=partner.name,
        sector=str(partner.sector),
        roles=tuple(partner.roles),
        delivery_topic=delivery_topic(partner.partner_id),
        status=partner.status,
        local_person_id_category=partner.local_person_id_category,
        sedex_id=partner.sedex_id,
    )


async def mirror_partner_status(msg: Incoming[Any], tx: Transaction) -> None:
    await repo.set_partner_status(tx, msg.data.partner_id, msg.data.status)
