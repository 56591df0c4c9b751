"""Composition root of the registry: which topics it reads and which handler gets what."""

from __future__ import annotations

from collections.abc import Sequence

from contracts import (
    ArrivalRegistered,
    DepartureConfirmed,
    MoveReported,
    NotificationStatusChanged,
    PseudonymsIssued,
    TaxRecordUpdated,
)
from hub import topics
from hub.consumer import Route
from hub.service import ServiceContext, ServiceDefinition
from services.registry import handlers

NAME = "registry"


def routes(_ctx: ServiceContext) -> Sequence[Route]:
    return (
        Route(
            topic=topics.INGRESS,
            group_id="hub.registry.ingress",
            handlers={
                MoveReported.event_type: handlers.open_relocation_case,
                DepartureConfirmed.event_type: handlers.record_milestone,
                ArrivalRegistered.event_type: handlers.record_milestone,
                TaxRecordUpdated.event_type: handlers.record_milestone,
            },
        ),
        Route(
            topic=topics.IDENTITY_RESULTS,
            group_id="hub.registry.identity-results",
            handlers={PseudonymsIssued.event_type: handlers.deliver_to_partners},
        ),
        Route(
            topic=topics.NOTIFICATION_STATUS,
            group_id="hub.registry.notification-status",
            handlers={NotificationStatusChanged.event_type: handlers.record_notification_status},
        ),
    )


async def delivery_topics(ctx: ServiceContext) -> Sequence[str]:
    """Every partner's delivery topic exists before anything is delivered to it."""
    async with ctx.pool.acquire() as conn:
        rows = await conn.fetch("SELECT delivery_topic FROM partners")
    return [row["delivery_topic"] for row in rows]


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name=NAME,
        migrations_package="services.registry.migrations",
        topics=(
            topics.IDENTITY_REQUESTS,
            topics.NOTIFICATION_REQUESTS,
        ),
        routes=routes,
        dynamic_topics=delivery_topics,
    )
