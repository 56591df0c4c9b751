"""Composition root of the identity service."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from contracts import PseudonymsRequested
from contracts.admin import ChangePartnerStatus, RegisterPartner
from hub import topics
from hub.consumer import Route
from hub.service import ServiceContext, ServiceDefinition, Worker
from services.identity import admin, handlers
from services.identity.announcer import PartnerAnnouncer
from services.identity.keys import load_pseudonym_secret

NAME = "identity"


def routes(ctx: ServiceContext) -> Sequence[Route]:
    secret = load_pseudonym_secret(ctx.settings)
    return (
        Route(
            topic=topics.IDENTITY_REQUESTS,
            group_id="hub.identity.requests",
            handlers={
                PseudonymsRequested.event_type: functools.partial(handlers.issue_pseudonyms, secret=secret)
            },
        ),
        Route(
            topic=topics.ADMIN,
            group_id="hub.identity.admin",
            handlers={
                RegisterPartner.event_type: admin.register_partner,
                ChangePartnerStatus.event_type: admin.change_partner_status,
            },
            ignore_unknown_types=True,  # the registry's commands (subscriptions) share the topic
        ),
    )


def workers(ctx: ServiceContext) -> Sequence[Worker]:
    return (PartnerAnnouncer(ctx.pool, source=ctx.source).run,)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name=NAME,
        migrations_package="services.identity.migrations",
        topics=(topics.IDENTITY_RESULTS, topics.IDENTITY_PARTNERS),
        routes=routes,
        workers=workers,
    )
