"""Composition root of the identity service."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from contracts import PseudonymsRequested
from hub import topics
from hub.consumer import Route
from hub.service import ServiceContext, ServiceDefinition
from services.identity import handlers
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
    )


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name=NAME,
        migrations_package="services.identity.migrations",
        topics=(topics.IDENTITY_RESULTS,),
        routes=routes,
    )
