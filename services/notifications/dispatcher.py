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
from collections.abc import Callable, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from contracts import Channel, DeliveryStatus
from hub.errors import DatabaseUnavailable
from hub.runtime.telemetry import context_from_traceparent, tracer
from services.notifications.batching import WriteBatcher
from services.notifications.channels import ChannelAdapter
from services.notifications.domain import Outcome, Pending, retry_delay, sending_order
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError
from services.notifications.ports import UnitsOfWork
from services.notifications.status import StatusChange, record_statuses

log = logging.getLogger(__name__)

SENDING_LEASE_S = 120.0  # longer than any one send (SMTP and HTTP time out well before)
LEASE_CHECK_INTERVAL_S = 5.0
OUTCOME_WRITES = 3  # transactions recording outcomes at once (of a pool of HUB_DATABASE_POOL_SIZE)
WAITS_FOR = "not sent: waits for {} of its case to be retried first"


class Dispatcher:
    def __init__(
        self,
        units: UnitsOfWork,
        channels: Mapping[Channel, ChannelAdapter],
        *,
        batch_size: int | None = None,
        concurrency: int = 16,
        max_attempts: int = 6,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 300.0,
        poll_interval_s: float = 1.0,
        on_outcome: Callable[[str, DeliveryStatus], None] | None = None,
    ) -> None:
        """``concurrency``: attempts under way at once, each of a different case (a channel may
        limit further, as SMTP does to its connections). ``batch_size``: notices claimed (so
        'sending') at most at a time; twice the concurrency unless given, because a claimed
        notice still waiting for its turn runs down its lease."""
        self._units, self._channels = units, channels
        # Told each outcome once it is recorded (the notifications metric).
        self._on_outcome = on_outcome
        self._batch_size = batch_size or 2 * concurrency
        self._max_attempts = max_attempts
        self._backoff_initial_s, self._backoff_max_s = backoff_initial_s, backoff_max_s
        self._poll_interval_s = poll_interval_s
        self._attempt_slots = asyncio.Semaphore(concurrency)
        # Outcomes of attempts that end together are recorded in one transaction.
        self._outcomes = WriteBatcher[StatusChange](self._record, concurrent_writes=OUTCOME_WRITES)
        self._wake = asyncio.Event()
        self._in_flight = 0  # claimed by run() and not finished yet
        # run() claims again once this many notices have finished: in batches, not one by one.
        self._claim_when_free = max(1, self._batch_size // 2)

    async def run(self, stop: asyncio.Event) -> None:
        """Claims more as notices finish, not batch after batch: a slow partner or relay holds
        back its own cases only. On ``stop``, the notices under way are finished first."""
        loop = asyncio.get_running_loop()
        next_lease_check = 0.0
        async with self._units.on_due(self._wake.set), asyncio.TaskGroup() as sending:
            while not stop.is_set():
                room = self._batch_size - self._in_flight
                claimed = 0
                try:
                    if loop.time() >= next_lease_check:
                        await self.requeue_stale()
                        next_lease_check = loop.time() + LEASE_CHECK_INTERVAL_S
                    if room >= self._claim_when_free:
                        for group in await self._claim(room):
                            self._in_flight += len(group)
                            claimed += len(group)
                            sending.create_task(self._send_claimed(group))
                except DatabaseUnavailable as error:
                    log.warning("dispatcher cannot reach the database: %s", error)
                if claimed and claimed == room:
                    continue  # more may be due
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)

    async def _send_claimed(self, group: list[Pending]) -> None:
        try:
            await self._deliver_in_order(group)
        except DatabaseUnavailable as error:
            # Outcomes not recorded stay 'sending' until their lease is over, then are retried.
            log.error("outcomes of case %s not recorded: %s", group[0].case_id, error)
        finally:
            self._in_flight -= len(group)
            if self._batch_size - self._in_flight >= self._claim_when_free:
                self._wake.set()

    async def requeue_stale(self) -> int:
        """'sending' is a lease: a dispatcher that died mid-send (or lost the database before
        recording the outcome) leaves notices there; they are retried once the lease is over."""
        async with self._units.begin() as uow:
            return await uow.notifications.requeue_stale_sending(older_than_s=SENDING_LEASE_S)

    async def dispatch_due(self) -> int:
        """One claim of due notices, sent: each case's in order, different cases at once."""
        groups = await self._claim(self._batch_size)
        await asyncio.gather(*(self._deliver_in_order(group) for group in groups))
        return sum(len(group) for group in groups)

    async def _claim(self, limit: int) -> list[list[Pending]]:
        """Due notices, grouped by what must go out in order (``domain.sending_order``)."""
        async with self._units.begin() as uow:
            due = await uow.notifications.claim_due(limit)
        groups: dict[tuple[str, str], list[Pending]] = {}
        for item in due:
            groups.setdefault(sending_order(item), []).append(item)
        return list(groups.values())

    async def _deliver_in_order(self, items: Sequence[Pending]) -> None:
        for position, item in enumerate(items):
            status = await self._deliver(item)
            if status is DeliveryStatus.TEMPORARY_FAILURE:
                # The later notices must not overtake this one: they wait for its retry.
                await self._release(items[position + 1 :], waiting_for=item.notification_id)
                return

    async def _release(self, items: Sequence[Pending], *, waiting_for: str) -> None:
        if not items:
            return
        try:
            async with self._units.begin() as uow:
                await uow.notifications.release(
                    [item.notification_id for item in items], reason=WAITS_FOR.format(waiting_for)
                )
        except DatabaseUnavailable as error:
            # They stay 'sending' until their lease is over; claims keep them behind the retry.
            log.warning("notices after %s not given back: %s", waiting_for, error)

    async def _deliver(self, item: Pending) -> DeliveryStatus:
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
            async with self._attempt_slots:
                outcome = await self._attempt(item)
            span.set_attribute("hub.notification.status", outcome.status.value)
            change = StatusChange(
                outcome,
                item.channel,
                item.template,
                item.case_id,
                item.test_delivery,
                otel_context.get_current(),
            )
            # The outcome is known now; losing it to a database restart would resend the
            # notice when the lease expires. Keep trying for as long as a lease lasts.
            delay, deadline = 0.2, asyncio.get_running_loop().time() + SENDING_LEASE_S / 2
            while True:
                try:
                    await self._outcomes.submit(change)
                    if self._on_outcome is not None:
                        self._on_outcome(item.channel, outcome.status)
                    return outcome.status
                except DatabaseUnavailable as error:
                    if asyncio.get_running_loop().time() + delay > deadline:
                        log.error("outcome of %s not recorded: %s", item.notification_id, error)
                        raise
                    log.warning("recording %s again in %.1fs: %s", item.notification_id, delay, error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    async def _record(self, changes: Sequence[StatusChange]) -> None:
        async with self._units.begin() as uow:
            await record_statuses(uow, changes)

    async def _attempt(self, item: Pending) -> Outcome:
        notification_id = item.notification_id
        if item.unreadable is not None:
            # Erased after the notice was queued (nobody left to tell), or tampered with.
            return Outcome(notification_id, DeliveryStatus.PERMANENT_FAILURE, item.unreadable)
        channel = Channel(item.channel)
        # A test delivery to a citizen is simulated, as with GOV.UK Notify's test keys. A partner's
        # webhook gets it like its Kafka topic would, flagged by the testdelivery attribute.
        if item.test_delivery and channel is not Channel.WEBHOOK:
            return Outcome(notification_id, DeliveryStatus.DELIVERED, "test delivery: nothing sent")
        adapter = self._channels.get(channel)
        try:
            if adapter is None:
                raise PermanentDeliveryError(f"no {channel} channel configured")
            await adapter.deliver(item)
        except TemporaryDeliveryError as error:
            if item.attempts >= self._max_attempts:
                detail = f"gave up after {item.attempts} attempts: {error}"
                return Outcome(notification_id, DeliveryStatus.TECHNICAL_FAILURE, detail)
            delay = retry_delay(
                item.attempts,
                initial_s=self._backoff_initial_s,
                max_s=self._backoff_max_s,
                jitter=random.uniform(1.0, 1.5),
            )
            return Outcome(notification_id, DeliveryStatus.TEMPORARY_FAILURE, str(error), delay)
        except PermanentDeliveryError as error:
            return Outcome(notification_id, DeliveryStatus.PERMANENT_FAILURE, str(error))
        return Outcome(notification_id, DeliveryStatus.DELIVERED)
