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
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from hub.runtime.outbox import OutboxEmitter, OutboxRow, Transaction, write_rows
from hub.runtime.telemetry import batch_span, consumer_span, current_trace_id, messaging_attributes

log = logging.getLogger(__name__)

# A handler gets the event and its service's unit of work (typed repositories and emit()).
Handler = Callable[[Incoming[Any], Any], Awaitable[None]]
# Builds a service's unit of work over the transaction the runtime opened: its adapter
# binds the repositories to the connection, and events go out through the emitter.
UnitOfWorkFactory = Callable[[asyncpg.Connection, Emitter], object]
# Raises a PermanentError for a record the route refuses on its topic and envelope alone.
Admission = Callable[[str, Envelope], None]
# Given a batch's transaction and its records (before their handlers run), the unit-of-work
# factory for that batch: an adapter reads what all the records need with one query per
# table (identity: the persons and pseudonyms of a batch's requests) and its units of work
# answer from that.
BatchUnitOfWork = Callable[[asyncpg.Connection, Sequence[Incoming[Any]]], Awaitable[UnitOfWorkFactory]]


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
    # Instead of ``unit_of_work`` for a batch: builds the batch's factory (see BatchUnitOfWork).
    batch_unit_of_work: BatchUnitOfWork | None = None

    def work_in(
        self,
        conn: asyncpg.Connection,
        *,
        source: str,
        pending: list[OutboxRow] | None = None,
        factory: UnitOfWorkFactory | None = None,
    ) -> tuple[OutboxEmitter, object]:
        """The emitter of the record's transaction, and what the handler gets; with
        ``pending``, the emitter collects its outbox rows there for one insert per batch."""
        factory = factory or self.unit_of_work
        if factory is None:
            transaction = Transaction(conn, source=source, pending=pending)
            return transaction, transaction
        emitter = OutboxEmitter(conn, source=source, pending=pending)
        return emitter, factory(conn, emitter)


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


@dataclass
class _Admitted:
    """A record that passed the checks made without I/O, ready for its handler."""

    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope
    data: Any
    handler: Handler

    def incoming(self, trace_id: str = "") -> Incoming[Any]:
        record = self.record
        return Incoming(
            envelope=self.envelope,
            data=self.data,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            trace_id=trace_id,
            value=record.value or b"",
            key=record.key,
            headers=tuple(record.headers),
        )


class _RecordFailed(Exception):
    """A handler failed while a batch ran without savepoints: the batch is run again with
    each record in a savepoint of its own, so the failure stays with its record."""


@dataclass
class BatchResult:
    """What became of a batch: per record its outcome, unless its partition was held back.

    ``held`` names, per partition, the offset to try again from and when: records from that
    offset on were not finished (their effects rolled back) and must be read again. A
    transient failure of the batch as a whole holds every partition at its first record.
    """

    outcomes: dict[int, Outcome]
    held: dict[tuple[str, int], tuple[int, RetryLater]]

    def finished_through(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> dict[tuple[str, int], int]:
        """Per partition the offset to commit: one past its last record finished in order."""
        commit: dict[tuple[str, int], int] = {}
        for index, record in enumerate(records):
            where = (record.topic, record.partition)
            held = self.held.get(where)
            if index in self.outcomes and (held is None or record.offset < held[0]):
                commit[where] = record.offset + 1
        return commit


class MessageProcessor:
    """Turns records into handler calls, a batch of them in one database transaction.

    A batch is claimed in the inbox with one statement, its handlers run per record in the
    order the records arrived (each partition's order), their outbox rows are inserted with
    one statement, and its dead letters are recorded in the same transaction. A record whose
    handler fails for good does not take its batch-mates with it: the batch runs again with
    a savepoint per record (only then: savepoints cost two round trips each), and the record
    is dead-lettered. A transient failure (the database away) rolls the whole batch back.
    """

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
        """One try at one record: its final outcome, or when to try again."""
        result = await self.attempt_batch([record], lambda _record: attempt)
        if 0 in result.outcomes:
            return result.outcomes[0]
        [(_offset, retry)] = result.held.values()
        return retry

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

    async def attempt_batch(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        attempt_of: Callable[[ConsumerRecord[bytes, bytes]], int],
    ) -> BatchResult:
        """One try at a batch (records in the order read: each partition's in offset order).

        The caller commits, per partition, the offsets ``BatchResult.finished_through``
        names and reads the held partitions again from their offset after the delay; the
        service pauses only those partitions, so one failing partition does not hold up the
        others.
        """
        now = time.monotonic()
        if len(self._first_tried) >= _MAX_TRACKED:  # records of revoked partitions never finish here
            self._first_tried.clear()
        for record in records:
            self._first_tried.setdefault(_key(record), now)
        refused: dict[int, BaseException] = {}
        skipped: set[int] = set()
        admitted: dict[int, _Admitted] = {}
        for index, record in enumerate(records):
            try:
                checked = self._admit(record)
            except (PermanentError, ContractError) as error:
                refused[index] = error
                continue
            if checked is None:
                skipped.add(index)
            else:
                admitted[index] = checked
        held: dict[tuple[str, int], tuple[int, RetryLater]] = {}
        isolated = False
        with batch_span(self._route.group_id, self._route.topic, [r.headers for r in records]):
            while True:
                try:
                    outcomes = await self._run(
                        records, admitted, refused, held, attempt_of, isolated=isolated
                    )
                except _RecordFailed:
                    isolated = True
                    continue
                except Exception as error:
                    if not _transient(error):
                        raise
                    return self._all_held(records, error, attempt_of)
                break
        for index in skipped:
            if not _is_held(records[index], held):
                outcomes[index] = Outcome.SKIPPED
        self._finished(records, outcomes)
        if self._metrics is not None and outcomes:
            self._metrics.batch_processed(self._route.group_id, len(outcomes))
        return BatchResult(outcomes, held)

    def _admit(self, record: ConsumerRecord[bytes, bytes]) -> _Admitted | None:
        """The checks that need no I/O; None for a type the route skips."""
        self._check_size(record)
        envelope = Envelope.from_headers(record.headers)
        if self._route.admit is not None:
            self._route.admit(record.topic, envelope)
        data = parse_data(envelope.type, record.value or b"")
        handler = self._route.handlers.get(envelope.type)
        if handler is None and self._route.ignore_unknown_types:
            return None
        if handler is None:
            raise UnroutableEvent(f"{self._route.group_id} does not handle {envelope.type}")
        return _Admitted(record, envelope, data, handler)

    async def _run(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        admitted: dict[int, _Admitted],
        refused: dict[int, BaseException],
        held: dict[tuple[str, int], tuple[int, RetryLater]],
        attempt_of: Callable[[ConsumerRecord[bytes, bytes]], int],
        *,
        isolated: bool,
    ) -> dict[int, Outcome]:
        """The batch in one transaction; ``refused`` and ``held`` grow with what failed."""
        outcomes: dict[int, Outcome] = {}
        committed: list[OutboxEmitter] = []
        pending: list[OutboxRow] = []
        group = self._route.group_id
        async with self._pool.acquire() as conn, conn.transaction():
            to_run = {
                i: a for i, a in admitted.items() if i not in refused and not _is_held(records[i], held)
            }
            claimed = await inbox.claim_many(conn, group, [a.envelope for a in to_run.values()])
            unclaim: list[Envelope] = []
            factory = self._route.unit_of_work
            if self._route.batch_unit_of_work is not None and to_run:
                factory = await self._route.batch_unit_of_work(
                    conn,
                    [a.incoming() for a in to_run.values() if inbox.event_key(a.envelope) in claimed],
                )
            for index, item in to_run.items():
                key = inbox.event_key(item.envelope)
                if _is_held(item.record, held):  # held back by an earlier record of its partition
                    if key in claimed:  # claimed by this batch only: an older claim stays
                        claimed.discard(key)
                        unclaim.append(item.envelope)
                    continue
                if key not in claimed:
                    outcomes[index] = Outcome.DUPLICATE
                    continue
                claimed.discard(key)  # a second copy in the same batch is a duplicate
                emitter, work = self._route.work_in(conn, source=self._source, pending=[], factory=factory)
                try:
                    await self._handle(conn, item, emitter, work, isolated=isolated)
                except (PermanentError, ContractError) as error:
                    if not isolated:
                        raise _RecordFailed from error
                    refused[index] = error
                    unclaim.append(item.envelope)
                    continue
                except Exception as error:
                    if _transient(error):
                        raise
                    if not isolated:
                        raise _RecordFailed from error
                    unclaim.append(item.envelope)
                    if self._give_up(item.record, error):
                        refused[index] = error
                    else:
                        held[_partition(item.record)] = (
                            item.record.offset,
                            self._retry_later(item.record, error, attempt_of(item.record)),
                        )
                    continue
                outcomes[index] = Outcome.PROCESSED
                committed.append(emitter)
                pending.extend(emitter.pending or ())
            await inbox.release_many(conn, group, unclaim)
            for emitter in committed:
                for write in emitter.deferred:
                    await write()
            await write_rows(conn, pending)
            for index, reason in refused.items():
                record = records[index]
                if _is_held(record, held):
                    continue
                await self._dead_letters.write_in(
                    conn,
                    record,
                    group,
                    reason,
                    attempts=attempt_of(record),
                    on_refused=self._route.on_refused,
                )
                outcomes[index] = Outcome.DEAD_LETTERED
        for emitter in committed:
            emitter.committed()
        for index, outcome in outcomes.items():
            if outcome is Outcome.DEAD_LETTERED and self._metrics is not None:
                self._metrics.dead_lettered(records[index].topic, type(refused[index]).__name__)
        return outcomes

    async def _handle(
        self, conn: asyncpg.Connection, item: _Admitted, emitter: Emitter, work: object, *, isolated: bool
    ) -> None:
        record, envelope = item.record, item.envelope
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
        with consumer_span(record.headers, attributes, record.topic):
            incoming = item.incoming(current_trace_id())
            if isolated:
                async with conn.transaction():  # a savepoint: a failure rolls back this record only
                    await item.handler(incoming, work)
            else:
                await item.handler(incoming, work)
            # Inside the record's span: a JSON log line carries its trace and span ids.
            log.debug("%s: %s of case %s processed", self._route.group_id, envelope.type, incoming.case_id)

    def _give_up(self, record: ConsumerRecord[bytes, bytes], error: BaseException) -> bool:
        """An unforeseen failure (a bug): retried a few times, then dead-lettered.

        Counted apart from transient retries: a record that waited out a database restart
        has not used up its budget for unexpected failures.
        """
        key = _key(record)
        unexpected = self._unexpected.get(key, 0) + 1
        if unexpected < self._retry.max_unexpected_attempts:
            if len(self._unexpected) >= _MAX_TRACKED:  # records of revoked partitions never finish here
                self._unexpected.clear()
            self._unexpected[key] = unexpected
            return False
        log.error("giving up on %s: %s", _where(record), error, exc_info=error)
        return True

    def _all_held(
        self,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        error: BaseException,
        attempt_of: Callable[[ConsumerRecord[bytes, bytes]], int],
    ) -> BatchResult:
        """The whole batch rolled back: every partition is read again from its first record."""
        held: dict[tuple[str, int], tuple[int, RetryLater]] = {}
        for record in records:
            if _partition(record) not in held:
                retry = self._retry_later(record, error, attempt_of(record))
                held[_partition(record)] = (record.offset, retry)
        return BatchResult({}, held)

    def _finished(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], outcomes: dict[int, Outcome]
    ) -> None:
        now = time.monotonic()
        for index, outcome in outcomes.items():
            record = records[index]
            key = _key(record)
            self._unexpected.pop(key, None)
            first_tried = self._first_tried.pop(key, now)
            self.counts[outcome] += 1
            where = _partition(record)
            self.finished_offsets[where] = max(record.offset, self.finished_offsets.get(where, -1))
            if self._metrics is not None:
                self._metrics.record_finished(
                    self._route.topic, self._route.group_id, outcome.value, now - first_tried
                )

    def _retry_later(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, attempt: int
    ) -> RetryLater:
        delay = self._retry.delay(attempt)
        log.warning("retrying %s in %.2fs (attempt %d): %s", _where(record), delay, attempt, error)
        return RetryLater(delay, attempt, error)

    def _check_size(self, record: ConsumerRecord[bytes, bytes]) -> None:
        # Checked before parsing: an oversized value must not cost a JSON parse and a
        # validation, and must not reach a handler or the database as a whole.
        if self._max_message_bytes is None:
            return
        size = record_size(record)
        if size > self._max_message_bytes:
            raise MessageTooLarge(f"message of {size} bytes exceeds the limit of {self._max_message_bytes}")


def _key(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _partition(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int]:
    return (record.topic, record.partition)


Held = dict[tuple[str, int], tuple[int, RetryLater]]


def _is_held(record: ConsumerRecord[bytes, bytes], held: Held) -> bool:
    hold = held.get(_partition(record))
    return hold is not None and record.offset >= hold[0]


def _where(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
