"""Composition root of the identity service."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from contracts import PseudonymsRequested
from contracts.admin import ChangePartnerStatus, RegisterPartner, RegisterPartnerKey, RevokePartnerKey
from hub.runtime import topics
from hub.runtime.consumer import Route
from hub.runtime.service import ServiceContext, ServiceDefinition, Worker
from hub.security.secrets import master_key_secret, pseudonym_secret
from hub.vault.legacy import legacy_sealer
from services.identity import admin, handlers, partner_keys, sealing
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
            # Each command proves its sender first: an operator's or an operations partner's signature.
            handlers=admin.verified_handlers(
                ctx.settings,
                {
                    RegisterPartner.event_type: admin.register_partner,
                    ChangePartnerStatus.event_type: admin.change_partner_status,
                    RegisterPartnerKey.event_type: partner_keys.register_partner_key,
                    RevokePartnerKey.event_type: partner_keys.revoke_partner_key,
                },
            ),
            ignore_unknown_types=True,  # the registry's commands (subscriptions) share the topic
        ),
    )


def workers(ctx: ServiceContext) -> Sequence[Worker]:
    sealer = legacy_sealer(ctx.pool, sealing.seal_batch, what="persons")
    return (PartnerAnnouncer(ctx.pool, source=ctx.source).run, sealer)


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name=NAME,
        migrations_package="services.identity.migrations",
        topics=(topics.IDENTITY_RESULTS, topics.IDENTITY_PARTNERS),
        routes=routes,
        workers=workers,
        secrets=lambda s: (master_key_secret(s), pseudonym_secret(s)),
    )
