"""Sends queued notifications and records each step of their status lifecycle.

created -> sending -> delivered | temporary-failure (retried with backoff) |
permanent-failure | technical-failure (gave up after the last attempt). Each outcome is
published as a status event through the outbox, in the trace of the request that
created the notification. The dispatcher sees its stores through ``UnitsOfWork`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping

from opentelemetry.trace import SpanKind

from contracts import Channel, DeliveryStatus
from hub.errors import DatabaseUnavailable
from hub.runtime.telemetry import context_from_traceparent, tracer
from services.notifications.channels import ChannelAdapter
from services.notifications.domain import Pending, retry_delay
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError
from services.notifications.ports import UnitsOfWork
from services.notifications.status import record_status

log = logging.getLogger(__name__)

Outcome = tuple[DeliveryStatus, str | None, float | None]  # status, detail, retry in seconds
SENDING_LEASE_S = 120.0  # longer than any one send (SMTP and HTTP time out well before)
LEASE_CHECK_INTERVAL_S = 5.0


class Dispatcher:
    def __init__(
        self,
        units: UnitsOfWork,
        channels: Mapping[Channel, ChannelAdapter],
        *,
        batch_size: int = 20,
        max_attempts: int = 6,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 300.0,
        poll_interval_s: float = 1.0,
        on_outcome: Callable[[str, DeliveryStatus], None] | None = None,
    ) -> None:
        self._units, self._channels = units, channels
        # Told each outcome once it is recorded (the notifications metric).
        self._on_outcome = on_outcome
        self._batch_size, self._max_attempts = batch_size, max_attempts
        self._backoff_initial_s, self._backoff_max_s = backoff_initial_s, backoff_max_s
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        next_lease_check = 0.0
        async with self._units.on_due(self._wake.set):
            while not stop.is_set():
                try:
                    if asyncio.get_running_loop().time() >= next_lease_check:
                        await self.requeue_stale()
                        next_lease_check = asyncio.get_running_loop().time() + LEASE_CHECK_INTERVAL_S
                    sent = await self.dispatch_due()
                except DatabaseUnavailable as error:
                    log.warning("dispatcher cannot reach the database: %s", error)
                    sent = 0
                if sent < self._batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def requeue_stale(self) -> int:
        """'sending' is a lease: a dispatcher that died mid-send (or lost the database before
        recording the outcome) leaves notices there; they are retried once the lease is over."""
        async with self._units.begin() as uow:
            return await uow.notifications.requeue_stale_sending(older_than_s=SENDING_LEASE_S)

    async def dispatch_due(self) -> int:
        async with self._units.begin() as uow:
            due = await uow.notifications.claim_due(self._batch_size)
        # One case's notices go out in the order they were requested (the citizen reads
        # "completed" after the steps); different cases are sent concurrently.
        by_case: dict[str, list[Pending]] = {}
        for item in due:
            by_case.setdefault(item.case_id, []).append(item)
        await asyncio.gather(*(self._deliver_in_order(items) for items in by_case.values()))
        return len(due)

    async def _deliver_in_order(self, items: list[Pending]) -> None:
        for item in items:
            await self._deliver(item)

    async def _deliver(self, item: Pending) -> None:
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
            # The outcome is known now; losing it to a database restart would resend the
            # notice when the lease expires. Keep trying for as long as a lease lasts.
            delay, deadline = 0.2, asyncio.get_running_loop().time() + SENDING_LEASE_S / 2
            while True:
                try:
                    await self._record(item, status, detail, retry_in)
                    if self._on_outcome is not None:
                        self._on_outcome(item.channel, status)
                    return
                except DatabaseUnavailable as error:
                    if asyncio.get_running_loop().time() + delay > deadline:
                        log.error("outcome of %s not recorded: %s", item.notification_id, error)
                        raise
                    log.warning("recording %s again in %.1fs: %s", item.notification_id, delay, error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    async def _record(
        self, item: Pending, status: DeliveryStatus, detail: str | None, retry_in: float | None
    ) -> None:
        async with self._units.begin() as uow:
            await record_status(
                uow,
                notification_id=item.notification_id,
                channel=item.channel,
                template=item.template,
                case_id=item.case_id,
                test_delivery=item.test_delivery,
                status=status,
                detail=detail,
                retry_in_s=retry_in,
            )

    async def _attempt(self, item: Pending) -> Outcome:
        if item.unreadable is not None:
            # Erased after the notice was queued (nobody left to tell), or tampered with.
            return DeliveryStatus.PERMANENT_FAILURE, item.unreadable, None
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
