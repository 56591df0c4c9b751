"""Entrypoint translation shared by every subscriber.

One Kafka record becomes: envelope and contract validation, a handler call inside a
database transaction that also claims the inbox, then a decision: commit the offset,
retry with backoff (transient), or dead-letter and commit (permanent). The offset of a
record is committed only after its effect and outbox rows are committed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from contracts import ContractError, Envelope
from contracts.catalog import parse_data
from hub.errors import MessageTooLarge, PermanentError, TransientError, UnroutableEvent
from hub.runtime import inbox
from hub.runtime.db import translate
from hub.runtime.deadletter import DeadLetterWriter, RefusalHook
from hub.runtime.deadletter_reference import record_size
from hub.runtime.messages import Emitter, Incoming
from hub.runtime.metrics import ServiceMetrics
from hub.runtime.outbox import OutboxEmitter, Transaction
from hub.runtime.telemetry import consumer_span, current_trace_id, messaging_attributes

log = logging.getLogger(__name__)

# A handler gets the event and its service's unit of work (typed repositories and emit()).
Handler = Callable[[Incoming[Any], Any], Awaitable[None]]
# Builds a service's unit of work over the transaction the runtime opened: its adapter
# binds the repositories to the connection, and events go out through the emitter.
UnitOfWorkFactory = Callable[[asyncpg.Connection, Emitter], object]
# Raises a PermanentError for a record the route refuses on its topic and envelope alone.
Admission = Callable[[str, Envelope], None]


# Failures where the same record may succeed later: the database or broker is away.
def _transient(error: BaseException) -> bool:
    return isinstance(translate(error), TransientError) or isinstance(error, OSError | TimeoutError)


_MAX_TRACKED = 10_000


class Outcome(enum.Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead-lettered"


@dataclass(frozen=True)
class Route:
    """A subscription of a service: topic, consumer group and a handler per event type."""

    # With ``pattern``, the name the route is known by (its dead letters go to this name's
    # dead-letter topic); otherwise the one topic it reads.
    topic: str
    group_id: str
    handlers: Mapping[str, Handler]
    # On a topic several services share (e.g. hub.admin), types meant for others are
    # skipped (and counted) rather than dead-lettered.
    ignore_unknown_types: bool = False
    # Runs in the transaction that records a dead letter of this route (the registry's
    # ingress seals refusals into the audit chain with it); None for most routes.
    on_refused: RefusalHook | None = None
    # A regular expression: the route reads every topic it matches, including topics
    # created later (the registry: every partner's own ingress topic).
    pattern: str | None = None
    # Checked with the record's topic and envelope before anything else, the inbox included:
    # a record it refuses is dead-lettered with its reason even if its source and id were
    # seen before, so a copy of another sender's event is never dropped as a mere repeat.
    admit: Admission | None = None
    # The service's unit of work for each record; None hands the handler a Transaction.
    unit_of_work: UnitOfWorkFactory | None = None

    def work_in(self, conn: asyncpg.Connection, *, source: str) -> tuple[Emitter, object]:
        """The emitter of the record's transaction, and what the handler gets."""
        if self.unit_of_work is None:
            transaction = Transaction(conn, source=source)
            return transaction, transaction
        emitter = OutboxEmitter(conn, source=source)
        return emitter, self.unit_of_work(conn, emitter)


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 0.2
    max_s: float = 10.0
    max_unexpected_attempts: int = 5

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter: spreads retries of many consumers."""
        return random.uniform(0, min(self.max_s, self.initial_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class RetryLater:
    """A transient failure: try the same record again after ``delay_s``."""

    delay_s: float
    attempt: int
    error: BaseException


class MessageProcessor:
    def __init__(
        self,
        pool: asyncpg.Pool,
        route: Route,
        dead_letters: DeadLetterWriter,
        *,
        source: str,
        retry: RetryPolicy,
        max_message_bytes: int | None = None,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        # When each unfinished record was first tried, for the processing-time histogram.
        self._first_tried: dict[tuple[str, int, int], float] = {}
        # The last offset finished per partition: the consumer lag's starting point.
        self.finished_offsets: dict[tuple[str, int], int] = {}
        self._route = route
        self._dead_letters = dead_letters
        self._source = source
        self._retry = retry
        self._max_message_bytes = max_message_bytes
        self.counts: dict[Outcome, int] = {outcome: 0 for outcome in Outcome}
        self._unexpected: dict[tuple[str, int, int], int] = {}

    @property
    def route(self) -> Route:
        return self._route

    async def attempt(self, record: ConsumerRecord[bytes, bytes], attempt: int) -> Outcome | RetryLater:
        """One try at a record: its final outcome, or when to try again.

        The caller decides how to wait; the service pauses only the record's partition,
        so one failing partition does not hold up the others.
        """
        key = (record.topic, record.partition, record.offset)
        if len(self._first_tried) >= _MAX_TRACKED:  # records of revoked partitions never finish here
            self._first_tried.clear()
        first_tried = self._first_tried.setdefault(key, time.monotonic())
        try:
            try:
                outcome = await self._process_once(record)
            except (PermanentError, ContractError) as error:
                await self._dead_letter(record, error, attempt)
                outcome = Outcome.DEAD_LETTERED
            except Exception as error:
                if _transient(error):
                    raise  # a bug or an unforeseen failure: retry, then give up
                # Counted apart from transient retries: a record that waited out a database
                # restart has not used up its budget for unexpected failures.
                unexpected = self._unexpected.get(key, 0) + 1
                if unexpected < self._retry.max_unexpected_attempts:
                    self._track_unexpected(key, unexpected)
                    return self._retry_later(record, error, attempt)
                log.exception("giving up on %s", _where(record))
                await self._dead_letter(record, error, attempt)
                outcome = Outcome.DEAD_LETTERED
        except Exception as error:  # also when recording a dead letter met the outage
            if not _transient(error):
                raise
            return self._retry_later(record, error, attempt)
        self._unexpected.pop(key, None)
        self._first_tried.pop(key, None)
        self.counts[outcome] += 1
        self.finished_offsets[(record.topic, record.partition)] = record.offset
        if self._metrics is not None:
            route = self._route.topic
            self._metrics.record_finished(
                route, self._route.group_id, outcome.value, time.monotonic() - first_tried
            )
        return outcome

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, attempt: int
    ) -> None:
        await self._dead_letters.write(
            record, self._route.group_id, error, attempts=attempt, on_refused=self._route.on_refused
        )
        if self._metrics is not None:
            self._metrics.dead_lettered(record.topic, type(error).__name__)

    def _track_unexpected(self, key: tuple[str, int, int], count: int) -> None:
        if len(self._unexpected) >= _MAX_TRACKED:  # records of revoked partitions never finish here
            self._unexpected.clear()
        self._unexpected[key] = count

    async def process(
        self, record: ConsumerRecord[bytes, bytes], stop: asyncio.Event | None = None
    ) -> Outcome:
        """Handle one record until it is processed, known as a duplicate, or dead-lettered.

        Waits in place between attempts: for callers that own a single record (tools, tests).
        """
        attempt = 0
        while True:
            attempt += 1
            result = await self.attempt(record, attempt)
            if isinstance(result, Outcome):
                return result
            if stop is not None and stop.is_set():
                raise asyncio.CancelledError("shutting down while retrying")
            await asyncio.sleep(result.delay_s)

    def _retry_later(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, attempt: int
    ) -> RetryLater:
        delay = self._retry.delay(attempt)
        log.warning("retrying %s in %.2fs (attempt %d): %s", _where(record), delay, attempt, error)
        return RetryLater(delay, attempt, error)

    async def _process_once(self, record: ConsumerRecord[bytes, bytes]) -> Outcome:
        self._check_size(record)
        envelope = Envelope.from_headers(record.headers)
        if self._route.admit is not None:
            self._route.admit(record.topic, envelope)
        data = parse_data(envelope.type, record.value or b"")
        handler = self._route.handlers.get(envelope.type)
        if handler is None and self._route.ignore_unknown_types:
            return Outcome.SKIPPED
        if handler is None:
            raise UnroutableEvent(f"{self._route.group_id} does not handle {envelope.type}")
        attributes = messaging_attributes(
            topic=record.topic,
            operation="process",
            key=record.key.decode(errors="replace") if record.key else None,
            partition=record.partition,
            offset=record.offset,
            consumer_group=self._route.group_id,
            event_id=envelope.id,
            event_type=envelope.type,
            event_source=envelope.source,
            case_id=envelope.businessprocessid,
        )
        with consumer_span(record.headers, attributes, record.topic) as span:
            incoming = Incoming(
                envelope=envelope,
                data=data,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                trace_id=current_trace_id(),
                value=record.value or b"",
                key=record.key,
                headers=tuple(record.headers),
            )
            async with self._pool.acquire() as conn:
                async with conn.transaction():
                    if not await inbox.claim(conn, self._route.group_id, envelope):
                        span.set_attribute("hub.duplicate", True)
                        return Outcome.DUPLICATE
                    emitter, work = self._route.work_in(conn, source=self._source)
                    await handler(incoming, work)
                emitter.committed()
            # Inside the record's span: a JSON log line carries its trace and span ids.
            log.debug("%s: %s of case %s processed", self._route.group_id, envelope.type, incoming.case_id)
        return Outcome.PROCESSED

    def _check_size(self, record: ConsumerRecord[bytes, bytes]) -> None:
        # Checked before parsing: an oversized value must not cost a JSON parse and a
        # validation, and must not reach a handler or the database as a whole.
        if self._max_message_bytes is None:
            return
        size = record_size(record)
        if size > self._max_message_bytes:
            raise MessageTooLarge(f"message of {size} bytes exceeds the limit of {self._max_message_bytes}")


def _where(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
