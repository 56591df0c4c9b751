"""How the dispatcher hands one queued notification to its channel.

Each channel adapter turns a ``Pending`` row into what its sender needs and raises a
``DeliveryError`` subclass on failure; the dispatcher knows no channel's details.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from email.message import EmailMessage
from typing import Protocol

from hub.errors import DatabaseUnavailable
from hub.runtime.telemetry import current_trace_headers
from services.notifications.batching import WriteBatcher
from services.notifications.domain import NewInboxMessage, Pending
from services.notifications.email_sender import EmailSender
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError
from services.notifications.ports import UnitsOfWork
from services.notifications.sms_sender import SmsMessage, SmsSender
from services.notifications.webhook_poster import WebhookPost, WebhookPoster

MESSAGE_ID_DOMAIN = "hub.stadtluzern.ch"


@contextlib.asynccontextmanager
async def _database_trouble_is_temporary() -> AsyncIterator[None]:
    # A database hiccup must end as a retry, not leave the row in 'sending'.
    try:
        yield
    except DatabaseUnavailable as error:
        raise TemporaryDeliveryError(f"database unavailable: {error}") from error


class ChannelAdapter(Protocol):
    async def deliver(self, item: Pending) -> None: ...


class EmailChannel:
    def __init__(self, sender: EmailSender, *, from_address: str) -> None:
        self._sender, self._from = sender, from_address

    async def deliver(self, item: Pending) -> None:
        await self._sender.send(email_message(item, self._from))


def message_id(notification_id: str) -> str:
    """Stable per notice: mail systems and clients drop the copy a crash-and-retry may send."""
    return f"<{re.sub(r'[^A-Za-z0-9.-]', '.', notification_id)}@{MESSAGE_ID_DOMAIN}>"


def email_message(item: Pending, from_address: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = item.recipient
    message["Subject"] = item.subject
    message["Message-ID"] = message_id(item.notification_id)
    message["X-Hub-Case-Id"] = item.case_id
    message.set_content(item.body)
    message["Content-Language"] = item.language or ""  # after set_content, which drops Content-* headers
    return message


class SmsChannel:
    def __init__(self, sender: SmsSender) -> None:
        self._sender = sender

    async def deliver(self, item: Pending) -> None:
        # The row's body is already the SMS text (chosen when the notification was queued).
        await self._sender.send(SmsMessage(to=item.recipient, text=item.body, reference=item.notification_id))


class InboxChannel:
    """Delivering to the in-app inbox is writing a row of our own database. Inbox copies
    delivered at the same time (several cases at once) are written in one transaction."""

    def __init__(self, units: UnitsOfWork) -> None:
        self._units = units
        self._batcher = WriteBatcher[NewInboxMessage](self._store, concurrent_writes=2)

    async def deliver(self, item: Pending) -> None:
        message = NewInboxMessage(
            notification_id=item.notification_id,
            citizen_id=item.recipient,
            case_id=item.case_id,
            template=item.template,
            language=item.language or "",
            subject=item.subject,
            body=item.body,
        )
        async with _database_trouble_is_temporary():
            await self._batcher.submit(message)

    async def _store(self, messages: Sequence[NewInboxMessage]) -> None:
        async with self._units.begin() as uow:
            await uow.inbox.store_all(messages)


class WebhookChannel:
    """Looks the endpoint up at each attempt, so a corrected URL or a rotated secret applies to retries."""

    def __init__(self, units: UnitsOfWork, poster: WebhookPoster) -> None:
        self._units, self._poster = units, poster

    async def deliver(self, item: Pending) -> None:
        async with _database_trouble_is_temporary(), self._units.begin() as uow:
            endpoint = await uow.webhooks.of(item.recipient)
        if endpoint is None:
            raise PermanentDeliveryError(f"no webhook configured for {item.recipient}")
        await self._poster.post(
            WebhookPost(
                url=endpoint.url,
                secret=endpoint.secret,
                body=item.body.encode("utf-8"),
                delivery_id=item.notification_id,
                trace_headers=current_trace_headers(),  # the partner may continue the case's trace
            )
        )
