"""Sends queued notifications and records each step of their status lifecycle.

created -> sending -> delivered | temporary-failure (retried with backoff) |
permanent-failure | technical-failure. Each outcome is published as a status event
through the outbox, in the trace of the request that created the notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from email.message import EmailMessage

import asyncpg
from opentelemetry.trace import SpanKind

from contracts import Channel, DeliveryStatus, NotificationStatusChanged
from hub import topics
from hub.messages import Transaction
from hub.telemetry import context_from_traceparent, tracer
from services.notifications import repository as repo
from services.notifications.email_sender import EmailSender, PermanentDeliveryError, TemporaryDeliveryError

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: EmailSender,
        *,
        source: str,
        from_address: str,
        batch_size: int = 20,
        max_attempts: int = 6,
        backoff_initial_s: float = 1.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._pool, self._sender, self._source, self._from = pool, sender, source, from_address
        self._batch_size, self._max_attempts = batch_size, max_attempts
        self._backoff_initial_s, self._poll_interval_s = backoff_initial_s, poll_interval_s
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._pool.acquire()
        await listener.add_listener("notifications_due", lambda *_: self._wake.set())
        try:
            await repo.requeue_stale_sending(listener, older_than_s=60)
            while not stop.is_set():
                try:
                    sent = await self.dispatch_due()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("dispatcher cannot reach the database: %s", error)
                    sent = 0
                if sent < self._batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
        finally:
            await self._pool.release(listener)

    async def dispatch_due(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            due = await repo.claim_due(conn, self._batch_size)
        await asyncio.gather(*(self._deliver(item) for item in due))
        return len(due)

    async def _deliver(self, item: repo.Pending) -> None:
        parent = context_from_traceparent(item.traceparent, item.tracestate)
        with tracer().start_as_current_span(
            f"notify {item.channel}",
            context=parent,
            kind=SpanKind.CLIENT,
            attributes={
                "hub.case_id": item.case_id,
                "hub.notification.template": item.template,
                "hub.notification.attempt": item.attempts,
            },
        ):
            status, detail, retry_in = await self._attempt(item)
            async with self._pool.acquire() as conn, conn.transaction():
                await repo.finish(conn, item.notification_id, status, detail=detail, retry_in_s=retry_in)
                await Transaction(conn, source=self._source).emit(
                    NotificationStatusChanged(
                        notification_id=item.notification_id,
                        channel=Channel(item.channel),
                        status=status,
                        template=item.template,
                        detail=detail,
                    ),
                    topic=topics.NOTIFICATION_STATUS,
                    business_process_id=item.case_id,
                    test_delivery=item.test_delivery,
                )

    async def _attempt(self, item: repo.Pending) -> tuple[DeliveryStatus, str | None, float | None]:
        if item.test_delivery:
            return DeliveryStatus.DELIVERED, "test delivery: nothing sent", None
        try:
            await self._sender.send(self._email(item))
        except TemporaryDeliveryError as error:
            if item.attempts >= self._max_attempts:
                return (
                    DeliveryStatus.TECHNICAL_FAILURE,
                    f"gave up after {item.attempts} attempts: {error}",
                    None,
                )
            delay = self._backoff_initial_s * 2 ** (item.attempts - 1) * random.uniform(1.0, 1.5)
            return DeliveryStatus.TEMPORARY_FAILURE, str(error), delay
        except PermanentDeliveryError as error:
            return DeliveryStatus.PERMANENT_FAILURE, str(error), None
        return DeliveryStatus.DELIVERED, None, None

    def _email(self, item: repo.Pending) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = item.recipient
        message["Subject"] = item.subject
        # A stable Message-ID lets mail systems drop the copy a crash-and-retry may send.
        message["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9.-]', '.', item.notification_id)}@hub.stadtluzern.ch>"
        message["X-Hub-Case-Id"] = item.case_id
        message.set_content(item.body)
        message["Content-Language"] = item.language  # after set_content, which drops Content-* headers
        return message
