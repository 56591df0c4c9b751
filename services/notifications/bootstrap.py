"""Composition root of the notifications service."""

from __future__ import annotations

from collections.abc import Sequence

from contracts import NotificationRequested
from hub import topics
from hub.consumer import Route
from hub.service import ServiceContext, ServiceDefinition, Worker
from services.notifications import handlers
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import EmailSender, SmtpEmailSender

NAME = "notifications"


def routes(_ctx: ServiceContext) -> Sequence[Route]:
    return (
        Route(
            topic=topics.NOTIFICATION_REQUESTS,
            group_id="hub.notifications.requests",
            handlers={NotificationRequested.event_type: handlers.accept_notification},
        ),
    )


def definition(sender: EmailSender | None = None) -> ServiceDefinition:
    """``sender`` lets tests pass the in-memory fake instead of patching SMTP."""

    def workers(ctx: ServiceContext) -> Sequence[Worker]:
        if ctx.settings.smtp_port is None:
            raise RuntimeError("HUB_SMTP_PORT is not set and no SMTP sink was started")
        email = sender or SmtpEmailSender(ctx.settings.smtp_host, ctx.settings.smtp_port)
        dispatcher = Dispatcher(ctx.pool, email, source=ctx.source, from_address=ctx.settings.smtp_sender)
        return (dispatcher.run,)

    return ServiceDefinition(
        name=NAME,
        migrations_package="services.notifications.migrations",
        topics=(topics.NOTIFICATION_STATUS,),
        routes=routes,
        workers=workers,
    )
