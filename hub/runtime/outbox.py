"""Transactional outbox: events are rows written in the handler's transaction.

``write_event`` is called inside that transaction; ``OutboxRelay`` publishes the rows
once they are committed. The row keeps the traceparent of the span that wrote it, and
the relay's ``send`` span is its child, so a trace does not break at the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from contracts import Envelope, EnvelopeError
from contracts.catalog import serialize_data
from hub.errors import BrokerUnavailable
from hub.runtime.db import DATABASE_FAILURES, plan_afresh_in_this_transaction
from hub.runtime.messages import Emitted, Emitter
from hub.runtime.outbox_waves import PassResult, publish_in_case_order
from hub.runtime.publisher import OutgoingRecord, Publisher
from hub.runtime.send_results import SendResult
from hub.runtime.telemetry import (
    context_from_traceparent,
    current_trace_headers,
    messaging_attributes,
    tracer,
)
from hub.security.signing import SignatureRefused, SigningKey

log = logging.getLogger(__name__)

# What a broker outage or a database restart raises; the relay backs off and tries again.
RELAY_TRANSIENT: tuple[type[BaseException], ...] = (BrokerUnavailable, TimeoutError, *DATABASE_FAILURES)


def aggregate_type(event_type: str) -> str:
    """'ch.lu.hub.relocation.move-reported.v1' -> 'relocation'."""
    parts = event_type.split(".")
    return parts[-3] if len(parts) >= 3 else event_type


@dataclass(frozen=True)
class OutboxRow:
    """An event as the outbox keeps it, with the trace context of the span that emitted it."""

    id: uuid.UUID
    topic: str
    key: str
    type: str
    headers: str  # JSON: [[name, value], ...]
    payload: bytes
    traceparent: str | None
    tracestate: str | None

    @classmethod
    def of(cls, *, topic: str, key: str, envelope: Envelope, payload: bytes) -> OutboxRow:
        """Taken inside the emitting span: the relay's send span becomes its child."""
        trace_headers = current_trace_headers()
        return cls(
            id=_row_id(envelope.id),
            topic=topic,
            key=key,
            type=envelope.type,
            headers=json.dumps([[name, value.decode()] for name, value in envelope.to_headers()]),
            payload=payload,
            traceparent=trace_headers.get("traceparent"),
            tracestate=trace_headers.get("tracestate"),
        )


# One statement for any number of rows; unnest keeps the rows' order, so seq (which the
# relay publishes by) follows the order they were emitted in.
_INSERT_ROWS = """
    INSERT INTO outbox (id, topic, aggregatetype, aggregateid, type, headers, payload,
                        traceparent, tracestate)
    SELECT id, topic, aggregatetype, aggregateid, type, headers, payload, traceparent, tracestate
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::bytea[],
                $8::text[], $9::text[])
         WITH ORDINALITY AS r(id, topic, aggregatetype, aggregateid, type, headers, payload, traceparent,
                              tracestate, position)
    ORDER BY position
"""


async def write_rows(conn: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    """Insert ``rows`` in one statement, in the transaction ``conn`` is in."""
    if not rows:
        return
    await conn.execute(
        _INSERT_ROWS,
        [row.id for row in rows],
        [row.topic for row in rows],
        [aggregate_type(row.type) for row in rows],
        [row.key for row in rows],
        [row.type for row in rows],
        [row.headers for row in rows],
        [row.payload for row in rows],
        [row.traceparent for row in rows],
        [row.tracestate for row in rows],
    )


async def write_event(
    conn: asyncpg.Connection, *, topic: str, key: str, envelope: Envelope, payload: bytes
) -> None:
    await write_rows(conn, [OutboxRow.of(topic=topic, key=key, envelope=envelope, payload=payload)])


class OutboxEmitter(Emitter):
    """Emits into the outbox, in the transaction ``conn`` is in: an event leaves only if
    that transaction commits, and the relay publishes it afterwards.

    With ``pending``, rows are collected there instead of inserted one by one: the batch
    consumer inserts a whole batch's rows in one statement before it commits, and drops
    the rows of a record whose handler failed together with its savepoint.
    """

    def __init__(
        self, conn: asyncpg.Connection, *, source: str, pending: list[OutboxRow] | None = None
    ) -> None:
        super().__init__(source=source)
        self._conn = conn
        self.pending = pending
        # With ``pending``: the writes ``before_commit`` defers to the end of the batch.
        self.deferred: list[Callable[[], Awaitable[object]]] = []

    async def before_commit(self, write: Callable[[], Awaitable[object]]) -> None:
        if self.pending is None:
            await write()
        else:
            self.deferred.append(write)

    async def _write(self, emitted: Emitted) -> None:
        row = OutboxRow.of(
            topic=emitted.topic,
            key=emitted.key,
            envelope=emitted.envelope,
            payload=serialize_data(emitted.data),
        )
        if self.pending is not None:
            self.pending.append(row)
        else:
            await write_rows(self._conn, [row])


class Transaction(OutboxEmitter):
    """An outbox emitter that also lends its connection, for code that has no unit of work
    of its own yet."""

    def __init__(
        self, conn: asyncpg.Connection, *, source: str, pending: list[OutboxRow] | None = None
    ) -> None:
        super().__init__(conn, source=source, pending=pending)
        self.conn = conn


def sign_headers(key: SigningKey, headers: dict[str, str], payload: bytes) -> dict[str, str]:
    """The row's headers with the service's signature added (``hub.security.signing``).

    Signed when published rather than when written: one place covers every event a
    service emits, whichever code path wrote the row. The signature covers the row's
    headers as they go on the wire (UTF-8), ``ce_sigkeyid`` included; headers the relay
    adds afterwards (trace context) are not signed ones. Dead letters keep the failed
    record's own headers and are not signed. Ed25519 is deterministic, so a row
    published twice (after a crash) carries the same signature both times.
    """
    if "dlt-original-topic" in headers or "ce_signature" in headers:
        # Dead letters and redriven records keep their sender's headers: a redriven
        # partner event must still carry the partner's signature, not the service's.
        return headers
    wire = [(name, value.encode()) for name, value in headers.items()]
    try:
        Envelope.from_headers(wire)  # the hub vouches only for what it can read as an event
        signed = key.sign_headers(wire, payload)
    except (EnvelopeError, SignatureRefused) as error:  # our rows are well-formed; never stop the relay
        log.error("outbox row %s not signed: %s", headers.get("ce_id", "?"), error)
        return headers
    return {name: value.decode() for name, value in signed}


def _row_id(event_id: str) -> uuid.UUID:
    """The CloudEvents id as the row's uuid; an id that is no UUID maps to a stable one."""
    return uuid.UUID(event_id) if _is_uuid(event_id) else uuid.uuid5(uuid.NAMESPACE_URL, event_id)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def outbox_backlog(conn: asyncpg.Connection) -> int:
    """Rows the relay still has to publish; parked rows wait for an operator and count apart."""
    value = await conn.fetchval(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND parked_at IS NULL"
    )
    return int(value)


# What the relay may publish now: unpublished rows that are neither parked nor waiting for
# their retry time, and that no earlier row of their case on the same topic (same key) holds
# up by being parked or waiting. Rows whose transactions commit late are still found on the
# next scan (no "seq > last_seen").
_CLAIM = """
    SELECT seq, topic, aggregateid, type, headers, payload, traceparent, tracestate
    FROM outbox o
    WHERE published_at IS NULL AND parked_at IS NULL AND (retry_at IS NULL OR retry_at <= now())
      AND NOT EXISTS (
          SELECT 1 FROM outbox earlier
          WHERE earlier.published_at IS NULL
            AND earlier.topic = o.topic AND earlier.aggregateid = o.aggregateid AND earlier.seq < o.seq
            AND (earlier.parked_at IS NOT NULL OR earlier.retry_at > now()))
    ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_PARK = """
    UPDATE outbox SET parked_at = now(), park_reason = $2, last_error = $2, attempts = attempts + 1
    WHERE seq = $1
"""
# Exponential per row from the relay's backoff settings ($3 initial, $4 most), on the
# attempts so far: the next try of this row only, never a pause of the relay.
_RETRY_LATER = """
    UPDATE outbox SET attempts = attempts + 1, last_error = $2,
        retry_at = now() + make_interval(
            secs => least($3::float8 * power(2, least(attempts, 30)), $4::float8))
    WHERE seq = $1
"""


# The first claim's limit, and the least the limit falls back to.
FIRST_BATCH_SIZE = 50


def _relay_lock_key(schema: str) -> int:
    """A stable 64-bit advisory lock key per schema (hash() differs between processes)."""
    digest = hashlib.blake2b(f"hub-outbox-relay:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class OutboxRelay:
    """Claims unpublished rows in batches, publishes them, marks them published.

    Several relays (replicas of a service) may share a table: one publishes at a time
    (transaction-scoped advisory lock), so one case's events keep their order; rows are
    claimed with ``FOR UPDATE`` in ``seq`` order. LISTEN/NOTIFY only shortens the wait,
    the poll interval bounds it when a notification is lost. While Kafka is unreachable
    the rows stay and the relay backs off.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        *,
        schema: str,
        batch_size: int,
        poll_interval_s: float,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        retention_s: float = 7 * 24 * 3600,
        signing_key: SigningKey | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._signing_key = signing_key
        self._channel = f"outbox_{schema}"
        self._lock_key = _relay_lock_key(schema)
        # The claim's limit follows the backlog: it doubles while claims come back full, up
        # to ``batch_size``, and falls back once the backlog is worked off. A small backlog
        # is claimed in small transactions; a large one in few large ones.
        self._max_batch_size = batch_size
        self._batch_size = min(batch_size, FIRST_BATCH_SIZE)
        self._poll_interval_s = poll_interval_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._retention_s = retention_s
        self._wake = asyncio.Event()
        self.published_total = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop``; a database restart or broker outage only makes it back off.

        The LISTEN connection is re-established after the database comes back: losing it
        only means waiting for the poll, never stopping the relay (and with it the service).
        """
        listener: asyncpg.Connection | None = None
        backoff = self._backoff_initial_s
        try:
            while not stop.is_set():
                try:
                    if listener is None or not _alive(listener):
                        listener = await self._listen(listener)
                    limit = self._batch_size
                    published = await self.publish_batch()
                    backoff = self._backoff_initial_s
                except RELAY_TRANSIENT as error:
                    log.warning("outbox relay cannot publish, retrying in %.1fs: %s", backoff, error)
                    await _sleep_or_stop(stop, backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, self._backoff_max_s)
                    continue
                if published < limit:
                    await self._wait_for_rows(stop)
        finally:
            if listener is not None:
                await self._unlisten(listener)

    async def _listen(self, previous: asyncpg.Connection | None) -> asyncpg.Connection:
        if previous is not None:
            await self._unlisten(previous)
        listener: asyncpg.Connection = await self._pool.acquire()
        try:
            await listener.add_listener(self._channel, self._on_notify)
        except BaseException:
            await self._unlisten(listener, listening=False)
            raise
        return listener

    async def _unlisten(self, listener: asyncpg.Connection, *, listening: bool = True) -> None:
        # The connection may be dead (database restarted): cleaning up must not fail the relay.
        with contextlib.suppress(*RELAY_TRANSIENT):
            if listening and _alive(listener):
                await listener.remove_listener(self._channel, self._on_notify)
        with contextlib.suppress(*RELAY_TRANSIENT):
            await self._pool.release(listener)

    async def publish_batch(self) -> int:
        """Publish at most one batch; return how many rows were published.

        Rows the broker acknowledged are marked published even when others of the batch
        failed, so they are never sent again for another row's sake. A row the broker can
        never take is parked with its reason (``hub outbox parked``); one that may succeed
        later waits for its own retry time. Either way the later rows of its case (same
        topic and key) wait behind it, and every other case goes on.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            # One publishing relay per schema at a time: with several replicas, SKIP LOCKED
            # alone would let two relays publish neighbouring batches concurrently and
            # reorder one case's events. The lock ends with the transaction.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._lock_key):
                return 0
            await plan_afresh_in_this_transaction(conn)
            limit = self._batch_size
            rows = await conn.fetch(_CLAIM, limit)
            self._batch_size = self._next_batch_size(limit, len(rows))
            if not rows:
                return 0
            outcome = await self._publish(rows)
            published = await self._record(conn, rows, outcome.results)
        self.published_total += published
        if outcome.outage is not None:
            raise outcome.outage
        return published

    def _next_batch_size(self, limit: int, claimed: int) -> int:
        if claimed >= limit:
            return min(limit * 2, self._max_batch_size)
        return min(max(claimed, FIRST_BATCH_SIZE), self._max_batch_size)

    @property
    def batch_size(self) -> int:
        """The limit of the next claim."""
        return self._batch_size

    async def _publish(self, rows: list[Any]) -> PassResult:
        spans: dict[int, Span] = {}

        def record_for(index: int) -> OutgoingRecord:
            record, spans[index] = self._outgoing(rows[index])
            return record

        try:
            outcome = await publish_in_case_order(
                self._publisher, [(row["topic"], row["aggregateid"]) for row in rows], record_for
            )
            for index, span in spans.items():
                result = outcome.results[index]
                if result is not None and result.error is not None:
                    span.set_status(Status(StatusCode.ERROR, result.error))
            return outcome
        finally:
            for span in spans.values():
                span.end()

    def _outgoing(self, row: Any) -> tuple[OutgoingRecord, Span]:
        """The row as a record, sent under a ``send`` span that is a child of the row's writer."""
        headers = {name: value for name, value in json.loads(row["headers"])}
        if self._signing_key is not None:
            headers = sign_headers(self._signing_key, headers, bytes(row["payload"]))
        parent = context_from_traceparent(row["traceparent"], row["tracestate"])
        span = tracer().start_span(
            f"send {row['topic']}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=messaging_attributes(
                topic=row["topic"],
                operation="send",
                key=row["aggregateid"],
                event_id=headers.get("ce_id", ""),
                event_type=row["type"],
                event_source=headers.get("ce_source", ""),
                case_id=headers.get("ce_businessprocessid", ""),
            ),
        )
        ctx = span.get_span_context()
        headers["traceparent"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
        if row["tracestate"]:
            headers["tracestate"] = row["tracestate"]
        record = OutgoingRecord(
            topic=row["topic"],
            key=row["aggregateid"].encode(),
            value=bytes(row["payload"]),
            headers=tuple((name, value.encode()) for name, value in headers.items()),
        )
        return record, span

    async def _record(
        self, conn: asyncpg.Connection, rows: list[Any], results: list[SendResult | None]
    ) -> int:
        """Mark what was acknowledged, park what never will be, schedule the rest; rows not
        sent (behind a failed row of their case) stay as they are."""
        published = [row["seq"] for row, r in zip(rows, results, strict=True) if r and r.acknowledged]
        refused = [
            (row, r.error) for row, r in zip(rows, results, strict=True) if r and r.error and r.permanent
        ]
        failing = [
            (row, r.error) for row, r in zip(rows, results, strict=True) if r and r.error and not r.permanent
        ]
        if published:
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", published
            )
        if refused:
            await conn.executemany(_PARK, [(row["seq"], reason) for row, reason in refused])
            for row, reason in refused:
                log.error(
                    "outbox row %d (%s, key %s) parked: %s; later rows of its case wait "
                    "(hub outbox parked / retry / drop)",
                    row["seq"],
                    row["topic"],
                    row["aggregateid"][:100],
                    reason,
                )
        if failing:
            await conn.executemany(
                _RETRY_LATER,
                [
                    (row["seq"], reason, self._backoff_initial_s, self._backoff_max_s)
                    for row, reason in failing
                ],
            )
            log.warning(
                "outbox: %d row(s) not published, each retried later: %s", len(failing), failing[0][1]
            )
        return len(published)

    async def purge_published(self) -> int:
        """Drop rows published longer ago than the retention period."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
                self._retention_s,
            )
        return int(status.split()[-1])

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _wait_for_rows(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        _done, pending = await asyncio.wait(
            waiters, timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()


def _alive(connection: asyncpg.Connection) -> bool:
    try:
        return not connection.is_closed()
    except DATABASE_FAILURES:  # a proxy the pool took back after the connection died
        return False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
