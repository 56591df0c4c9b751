"""Composition root of the identity service: the keys it loads at start, the adapters they
go to, and the handlers each route maps an event type to."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from contracts import PseudonymsRequested
from contracts.admin import ChangePartnerStatus, RegisterPartner, RegisterPartnerKey, RevokePartnerKey
from hub.runtime import topics
from hub.runtime.consumer import Route
from hub.runtime.service import ServiceContext, ServiceDefinition, Worker
from hub.security.secrets import master_key_secret, pseudonym_secret
from services.identity import handlers, handlers_admin, handlers_partner_keys
from services.identity.adapters.postgres import (
    PostgresUnitsOfWork,
    batch_unit_of_work_factory,
    unit_of_work_factory,
)
from services.identity.announcer import PartnerAnnouncer
from services.identity.keys import load_pseudonym_secret

NAME = "identity"


def routes(ctx: ServiceContext) -> Sequence[Route]:
    secret = load_pseudonym_secret(ctx.settings)
    unit_of_work = unit_of_work_factory(ctx.master_key)
    return (
        Route(
            topic=topics.IDENTITY_REQUESTS,
            group_id="hub.identity.requests",
            handlers={
                PseudonymsRequested.event_type: functools.partial(handlers.issue_pseudonyms, secret=secret)
            },
            unit_of_work=unit_of_work,
            # A batch's requests read their persons, partners and pseudonyms with one
            # statement per table, before the first handler runs.
            batch_unit_of_work=batch_unit_of_work_factory(ctx.master_key),
        ),
        Route(
            topic=topics.ADMIN,
            group_id="hub.identity.admin",
            # Each command proves its sender first: an operator's or an operations partner's signature.
            handlers=handlers_admin.verified_handlers(
                ctx.settings,
                {
                    RegisterPartner.event_type: handlers_admin.register_partner,
                    ChangePartnerStatus.event_type: handlers_admin.change_partner_status,
                    RegisterPartnerKey.event_type: handlers_partner_keys.register_partner_key,
                    RevokePartnerKey.event_type: handlers_partner_keys.revoke_partner_key,
                },
            ),
            ignore_unknown_types=True,  # the registry's commands (subscriptions) share the topic
            unit_of_work=unit_of_work,
        ),
    )


def workers(ctx: ServiceContext) -> Sequence[Worker]:
    units = PostgresUnitsOfWork(ctx.pool, master=ctx.master_key, source=ctx.source)
    return (PartnerAnnouncer(units).run,)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name=NAME,
        migrations_package="services.identity.migrations",
        topics=(topics.IDENTITY_RESULTS, topics.IDENTITY_PARTNERS),
        routes=routes,
        workers=workers,
        secrets=lambda s: (master_key_secret(s), pseudonym_secret(s)),
    )
