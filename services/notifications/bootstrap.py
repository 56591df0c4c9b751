"""Composition root of the notifications service: picks the adapters, each replaceable by tests.

The stores are PostgreSQL's (``adapters/postgres``), opened with the master key the service
loaded at start (``ctx.master_key``); handlers and workers see them through ``ports`` only.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

from contracts import Channel, NotificationRequested
from hub.runtime import topics
from hub.runtime.consumer import Route
from hub.runtime.outbox import OutboxEmitter
from hub.runtime.service import ServiceContext, ServiceDefinition, Worker
from services.notifications import handlers
from services.notifications.adapters.postgres import PostgresUnitsOfWork, unit_of_work_factory
from services.notifications.channels import (
    ChannelAdapter,
    EmailChannel,
    InboxChannel,
    SmsChannel,
    WebhookChannel,
)
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import EmailSender, SmtpEmailSender
from services.notifications.settings import NotificationSettings
from services.notifications.sms_sender import HttpSmsSender, SmsSender
from services.notifications.webhook_consumer import WebhookConsumer
from services.notifications.webhook_poster import HttpWebhookPoster, WebhookPoster

NAME = "notifications"


def definition(
    sender: EmailSender | None = None,
    *,
    sms: SmsSender | None = None,
    webhooks: WebhookPoster | None = None,
    settings: NotificationSettings | None = None,
) -> ServiceDefinition:
    """``sender``, ``sms`` and ``webhooks`` let tests pass fakes instead of patching the network."""
    own = settings or NotificationSettings()
    sms_sender: SmsSender | None = sms
    if sms_sender is None and own.sms_provider_url is not None and own.sms_provider_token is not None:
        sms_sender = HttpSmsSender(
            str(own.sms_provider_url), own.sms_provider_token, timeout_s=own.sms_provider_timeout_s
        )
    poster = webhooks or HttpWebhookPoster(timeout_s=own.webhook_timeout_s)

    def routes(ctx: ServiceContext) -> Sequence[Route]:
        accept = functools.partial(handlers.accept_notification, sms_available=sms_sender is not None)
        return (
            Route(
                topic=topics.NOTIFICATION_REQUESTS,
                group_id="hub.notifications.requests",
                handlers={NotificationRequested.event_type: accept},
                unit_of_work=unit_of_work_factory(ctx.master_key),
            ),
        )

    def workers(ctx: ServiceContext) -> Sequence[Worker]:
        if ctx.settings.smtp_port is None:
            raise RuntimeError("HUB_SMTP_PORT is not set and no SMTP sink was started")
        email = sender or SmtpEmailSender(
            ctx.settings.smtp_host,
            ctx.settings.smtp_port,
            account=own.smtp_account(),
            connections=own.smtp_connections,
        )
        units = PostgresUnitsOfWork(
            ctx.pool, master=ctx.master_key, emitter=functools.partial(OutboxEmitter, source=ctx.source)
        )
        channels: dict[Channel, ChannelAdapter] = {
            Channel.EMAIL: EmailChannel(email, from_address=ctx.settings.smtp_sender),
            Channel.INBOX: InboxChannel(units),
            Channel.WEBHOOK: WebhookChannel(units, poster),
        }
        if sms_sender is not None:
            channels[Channel.SMS] = SmsChannel(sms_sender)
        outcomes = (
            ctx.metrics.counter(
                "hub_notifications",
                "Notification outcomes by channel and delivery status.",
                ["channel", "status"],
            )
            if ctx.metrics is not None
            else None
        )
        dispatcher = Dispatcher(
            units,
            channels,
            on_outcome=(lambda channel, status: outcomes.labels(channel, status.value).inc())
            if outcomes is not None
            else None,
            concurrency=own.notification_concurrency,
            max_attempts=own.notification_max_attempts,
            backoff_initial_s=own.notification_backoff_initial_s,
            backoff_max_s=own.notification_backoff_max_s,
        )
        consumer = WebhookConsumer(
            ctx.pool,
            ctx.settings,
            units=units,
            unit_of_work=unit_of_work_factory(ctx.master_key),
            source=ctx.source,
            refresh_interval_s=own.webhook_refresh_interval_s,
        )

        async def dispatch(stop: asyncio.Event) -> None:
            try:
                await dispatcher.run(stop)
            finally:
                for adapter in (sms_sender, poster, email):
                    aclose = getattr(adapter, "aclose", None)
                    if aclose is not None:  # the HTTP adapters hold connection pools
                        await aclose()

        return (dispatch, consumer.run)

    return ServiceDefinition(
        name=NAME,
        migrations_package="services.notifications.migrations",
        topics=(topics.NOTIFICATION_STATUS,),
        routes=routes,
        workers=workers,
    )
