"""Sends queued notifications and records each step of their status lifecycle.

created -> sending -> delivered | temporary-failure (retried with backoff) |
permanent-failure | technical-failure (gave up after the last attempt). Each outcome is
published as a status event through the outbox, in the trace of the request that
created the notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping

import asyncpg
from opentelemetry.trace import SpanKind

from contracts import Channel, DeliveryStatus
from hub.messages import Transaction
from hub.telemetry import context_from_traceparent, tracer
from services.notifications import repository as repo
from services.notifications.channels import ChannelAdapter
from services.notifications.domain import retry_delay
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError
from services.notifications.status import record_status

log = logging.getLogger(__name__)

Outcome = tuple[DeliveryStatus, str | None, float | None]  # status, detail, retry in seconds


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Mapping[Channel, ChannelAdapter],
        *,
        source: str,
        batch_size: int = 20,
        max_attempts: int = 6,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 300.0,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._pool, self._channels, self._source = pool, channels, source
        self._batch_size, self._max_attempts = batch_size, max_attempts
        self._backoff_initial_s, self._backoff_max_s = backoff_initial_s, backoff_max_s
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._pool.acquire()
        await listener.add_listener("notifications_due", self._on_due)
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
            # A connection going back to the pool with a listener still attached is an error to asyncpg.
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await listener.remove_listener("notifications_due", self._on_due)
            await self._pool.release(listener)

    def _on_due(self, *_: object) -> None:
        self._wake.set()

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
                "hub.notification.id": item.notification_id,
                "hub.notification.template": item.template,
                "hub.notification.attempt": item.attempts,
            },
        ) as span:
            status, detail, retry_in = await self._attempt(item)
            span.set_attribute("hub.notification.status", status.value)
            async with self._pool.acquire() as conn, conn.transaction():
                await record_status(
                    Transaction(conn, source=self._source),
                    notification_id=item.notification_id,
                    channel=item.channel,
                    template=item.template,
                    case_id=item.case_id,
                    test_delivery=item.test_delivery,
                    status=status,
                    detail=detail,
                    retry_in_s=retry_in,
                )

    async def _attempt(self, item: repo.Pending) -> Outcome:
        channel = Channel(item.channel)
        # A test delivery to a citizen is simulated, as with GOV.UK Notify's test keys. A partner's
        # webhook gets it like its Kafka topic would, flagged by the testdelivery attribute.
        if item.test_delivery and channel is not Channel.WEBHOOK:
            return DeliveryStatus.DELIVERED, "test delivery: nothing sent", None
        adapter = self._channels.get(channel)
        try:
            if adapter is None:
                raise PermanentDeliveryError(f"no {channel} channel configured")
            await adapter.deliver(item)
        except TemporaryDeliveryError as error:
            if item.attempts >= self._max_attempts:
                detail = f"gave up after {item.attempts} attempts: {error}"
                return DeliveryStatus.TECHNICAL_FAILURE, detail, None
            delay = retry_delay(
                item.attempts,
                initial_s=self._backoff_initial_s,
                max_s=self._backoff_max_s,
                jitter=random.uniform(1.0, 1.5),
            )
            return DeliveryStatus.TEMPORARY_FAILURE, str(error), delay
        except PermanentDeliveryError as error:
            return DeliveryStatus.PERMANENT_FAILURE, str(error), None
        return DeliveryStatus.DELIVERED, None, None
