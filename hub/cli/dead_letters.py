"""Dead letters across the services: list, show, redrive, purge (``hub dlq``, hub/cli/dlq.py).

Each service records its dead letters in its own schema (``<service>.dead_letters``,
hub/runtime/deadletter.py), with the original key, headers and value. A redrive re-publishes
that record to its original topic through the same service's outbox, in the same
transaction that marks the dead letter redriven: either both happen or neither, and the
service's relay publishes it like any other row. The headers are kept, ``ce_id`` and
``ce_source`` included, so every consumer's inbox still recognises the event: a consumer
that processed it meanwhile drops the copy as a duplicate. A purge erases the key,
headers and value (personal data) and keeps the record that the failure happened.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub.errors import ConfigurationError, SchemaMissing
from hub.security.redrive_attestation import HEADER as REDRIVE_HEADER
from hub.security.redrive_attestation import attest
from hub.security.signing import SigningKey

# Headers the hub adds when dead-lettering; a redriven record is the original, not the dead letter.
DLT_HEADER_PREFIX = "dlt-"
# W3C trace context travels in the outbox row's columns, so the relay's send span joins the case's trace.
_TRACE_HEADERS = ("traceparent", "tracestate")

_SUMMARY_COLUMNS = """
    id, consumer, topic, partition, kafka_offset, event_id, event_type, error_class, error_message,
    dead_letter_topic, recorded_at, redriven_at, redrive_count, purged_at
"""


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command applies to; unset fields do not restrict."""

    services: tuple[str, ...]
    ids: tuple[int, ...] = ()
    topic: str | None = None
    event_type: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    reason: str | None = None
    older_than_days: float | None = None

    @property
    def narrowed(self) -> bool:
        """True if anything beyond the services restricts the selection."""
        return bool(
            self.ids
            or self.topic
            or self.event_type
            or self.since
            or self.until
            or self.reason
            or self.older_than_days is not None
        )


@dataclass(frozen=True)
class DeadLetter:
    id: int
    service: str
    consumer_group: str
    topic: str
    partition: int
    offset: int
    event_id: str | None
    event_type: str | None
    error_class: str
    error_message: str
    dead_letter_topic: str
    recorded_at: dt.datetime
    redriven_at: dt.datetime | None
    redrive_count: int
    purged_at: dt.datetime | None

    @property
    def state(self) -> str:
        if self.purged_at is not None:
            return "purged"
        return "redriven" if self.redrive_count else "open"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "consumer_group": self.consumer_group,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "error_class": self.error_class,
            "error_message": self.error_message,
            "dead_letter_topic": self.dead_letter_topic,
            "recorded_at": self.recorded_at.isoformat(),
            "state": self.state,
            "redriven_at": self.redriven_at.isoformat() if self.redriven_at else None,
            "redrive_count": self.redrive_count,
            "purged_at": self.purged_at.isoformat() if self.purged_at else None,
        }


@dataclass(frozen=True)
class DeadLetterContent:
    """A dead letter with the original record; key and value are None when not stored.

    ``truncated``: the record was too large to keep whole (``HUB_DEAD_LETTER_MAX_STORED_BYTES``)
    and only a reference was kept: ``value`` holds its first bytes, the headers are cut
    short, ``original_size`` and ``original_sha256`` describe the whole value.
    """

    summary: DeadLetter
    key: bytes | None
    headers: list[tuple[str, str]] | None
    value: bytes | None
    original_size: int | None = None
    original_sha256: str | None = None
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            **self.summary.as_json(),
            "key": decode_bytes(self.key),
            "headers": [list(h) for h in self.headers] if self.headers is not None else None,
            "payload": decode_bytes(self.value),
            "truncated": self.truncated,
            "original_size": self.original_size,
            "original_sha256": self.original_sha256,
        }


@dataclass(frozen=True)
class Redriven:
    service: str
    id: int
    topic: str
    event_id: str | None


@dataclass
class RedriveReport:
    redriven: list[Redriven] = field(default_factory=list)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # service, id, why
    services_not_running: list[str] = field(default_factory=list)


def decode_bytes(data: bytes | None) -> dict[str, str] | None:
    """Bytes for a person to read: the text if it is UTF-8, else base64."""
    if data is None:
        return None
    try:
        return {"encoding": "utf-8", "text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(data).decode("ascii")}


def redrive_headers(headers: Sequence[tuple[str, str]]) -> tuple[list[list[str]], str | None, str | None]:
    """Original headers minus ``dlt-*`` and trace context, plus that trace context.

    Nothing of the event changes: a redriven record is the event as the partner or service
    sent it (its ``ce_id`` keeps deduplication; a signature may cover the headers). The
    relay sets a new ``traceparent``, a child of the original one. An earlier redrive's
    attestation is dropped too: ``_queue`` attaches the current one.
    """
    kept = [
        [name, value]
        for name, value in headers
        if not name.startswith(DLT_HEADER_PREFIX) and name not in _TRACE_HEADERS and name != REDRIVE_HEADER
    ]
    trace = {name: value for name, value in headers if name in _TRACE_HEADERS}
    return kept, trace.get("traceparent"), trace.get("tracestate")


def where(selection: Selection, *, first_param: int = 1) -> tuple[str, list[Any]]:
    """SQL condition and parameters for a selection (services are chosen by schema)."""
    clauses: list[str] = []
    params: list[Any] = []

    def add(clause: str, value: Any) -> None:
        # Every "?" of one clause is the same parameter.
        params.append(value)
        clauses.append(clause.replace("?", f"${first_param + len(params) - 1}"))

    if selection.ids:
        add("id = ANY(?::bigint[])", list(selection.ids))
    if selection.topic:
        add("topic = ?", selection.topic)
    if selection.event_type:
        add("event_type = ?", selection.event_type)
    if selection.since:
        add("recorded_at >= ?", selection.since)
    if selection.until:
        add("recorded_at < ?", selection.until)
    if selection.reason:
        add("(error_class ILIKE ? OR error_message ILIKE ?)", _contains(selection.reason))
    if selection.older_than_days is not None:
        add("recorded_at < now() - make_interval(secs => ?)", selection.older_than_days * 86400.0)
    return (" AND ".join(clauses) or "true"), params


def _contains(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, with its own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _has_dead_letters(conn: asyncpg.Connection, service: str) -> bool:
    """A service that never started against this database has no schema yet: nothing to see."""
    return await conn.fetchval("SELECT to_regclass($1)", f'"{service}".dead_letters') is not None


def _summary(service: str, row: Any) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        service=service,
        consumer_group=row["consumer"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["kafka_offset"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        error_class=row["error_class"],
        error_message=row["error_message"],
        dead_letter_topic=row["dead_letter_topic"],
        recorded_at=row["recorded_at"],
        redriven_at=row["redriven_at"],
        redrive_count=row["redrive_count"],
        purged_at=row["purged_at"],
    )


def _unmigrated(service: str, error: SchemaMissing, migration: str = "0002") -> ConfigurationError:
    return ConfigurationError(
        f"{service}: dead_letters lacks the columns of migration hub-runtime {migration} ({error}); "
        "start the service once to migrate"
    )


async def list_dead_letters(
    conn: asyncpg.Connection, selection: Selection, *, limit: int = 100
) -> list[DeadLetter]:
    """Newest first across the selected services, at most ``limit``."""
    condition, params = where(selection)
    found: list[DeadLetter] = []
    for service in selection.services:
        if not await _has_dead_letters(conn, service):
            continue
        try:
            rows = await conn.fetch(
                f'SELECT {_SUMMARY_COLUMNS} FROM "{service}".dead_letters WHERE {condition}'
                f" ORDER BY recorded_at DESC, id DESC LIMIT ${len(params) + 1}",
                *params,
                limit,
            )
        except SchemaMissing as error:
            raise _unmigrated(service, error) from error
        found += [_summary(service, row) for row in rows]
    found.sort(key=lambda d: (d.recorded_at, d.id), reverse=True)
    return found[:limit]


async def show_dead_letter(
    conn: asyncpg.Connection, service: str, dead_letter_id: int
) -> DeadLetterContent | None:
    if not await _has_dead_letters(conn, service):
        return None
    try:
        row = await conn.fetchrow(
            f"SELECT {_SUMMARY_COLUMNS}, kafka_key, headers, payload,"
            " original_size, original_sha256, truncated"
            f' FROM "{service}".dead_letters WHERE id = $1',
            dead_letter_id,
        )
    except SchemaMissing as error:
        raise _unmigrated(service, error, "0004") from error
    if row is None:
        return None
    headers = json.loads(row["headers"]) if row["headers"] is not None else None
    return DeadLetterContent(
        summary=_summary(service, row),
        key=bytes(row["kafka_key"]) if row["kafka_key"] is not None else None,
        headers=[(name, value) for name, value in headers] if headers is not None else None,
        value=bytes(row["payload"]) if row["payload"] is not None else None,
        original_size=row["original_size"],
        original_sha256=row["original_sha256"],
        truncated=row["truncated"],
    )


async def service_running(conn: asyncpg.Connection, service: str) -> bool:
    """Whether the service is connected to the database (hub/runtime/db.py names its sessions)."""
    count = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
        f"hub-{service}",
    )
    return bool(count)


async def redrive(
    conn: asyncpg.Connection,
    selection: Selection,
    *,
    include_redriven: bool = False,
    dry_run: bool = False,
    attest_with: SigningKey | None = None,
) -> RedriveReport:
    """Queue the selected dead letters for re-publication in their service's outbox.

    Already redriven dead letters are left out unless named by id or ``include_redriven``:
    a filter repeated after a redrive should not publish the same events again. With
    ``attest_with`` (the operator's key, as ``hub dlq redrive`` passes it) each event
    carries the operator's redrive attestation, so the registry measures its replay window
    from the redrive rather than from the event's own, by now old, time.
    """
    report = RedriveReport()
    condition, params = where(selection)
    if not selection.ids and not include_redriven:
        condition += " AND redrive_count = 0"
    for service in selection.services:
        if not await _has_dead_letters(conn, service):
            continue
        # One transaction per service: its outbox rows and marks commit together.
        async with conn.transaction():
            try:
                rows = await conn.fetch(
                    "SELECT id, topic, event_id, event_type, kafka_key, headers, payload, truncated,"
                    " original_size"
                    f' FROM "{service}".dead_letters WHERE purged_at IS NULL AND {condition}'
                    # Recording order, so one case's redriven events keep their relative order.
                    " ORDER BY id FOR UPDATE",
                    *params,
                )
            except SchemaMissing as error:
                raise _unmigrated(service, error, "0004") from error
            for row in rows:
                why = _cannot_redrive(row)
                if why is not None:
                    report.skipped.append((service, row["id"], why))
                    continue
                if not dry_run:
                    await _queue(conn, service, row, attest_with)
                report.redriven.append(Redriven(service, row["id"], row["topic"], row["event_id"]))
        queued = not dry_run and any(r.service == service for r in report.redriven)
        if queued and not await service_running(conn, service):
            report.services_not_running.append(service)
    return report


def _cannot_redrive(row: Any) -> str | None:
    if row["payload"] is None or row["headers"] is None:
        return "the original record was not stored (recorded before migration 0002)"
    if row["truncated"]:
        return (
            f"only a reference was kept (the first {len(row['payload'])} of {row['original_size']} bytes, "
            "headers cut short): the record was over HUB_DEAD_LETTER_MAX_STORED_BYTES, so it cannot be "
            "redriven; the sender has to publish it again"
        )
    if row["kafka_key"] is not None:
        try:
            bytes(row["kafka_key"]).decode("utf-8")
        except UnicodeDecodeError:
            return "its key is not UTF-8; the outbox carries text keys"
    return None


async def _queue(conn: asyncpg.Connection, service: str, row: Any, attest_with: SigningKey | None) -> None:
    headers, traceparent, tracestate = redrive_headers(json.loads(row["headers"]))
    attributes = {name: value for name, value in headers}
    if attest_with is not None and "ce_id" in attributes and "ce_source" in attributes:
        headers.append(
            [
                REDRIVE_HEADER,
                attest(
                    attest_with,
                    event_id=attributes["ce_id"],
                    source=attributes["ce_source"],
                    redriven_at=dt.datetime.now(dt.UTC),
                ),
            ]
        )
    await conn.execute(
        f"""
        INSERT INTO "{service}".outbox (id, topic, aggregatetype, aggregateid, type, headers, payload,
                                       traceparent, tracestate)
        VALUES ($1, $2, 'redrive', $3, $4, $5::jsonb, $6, $7, $8)
        """,
        # The row's own id: the event keeps its ce_id in the headers, and one event may be
        # redriven more than once, so the row id cannot be derived from it.
        uuid.uuid4(),
        row["topic"],
        bytes(row["kafka_key"]).decode("utf-8") if row["kafka_key"] is not None else "",
        row["event_type"] or "unknown",
        json.dumps(headers),
        row["payload"],
        traceparent,
        tracestate,
    )
    await conn.execute(
        f'UPDATE "{service}".dead_letters SET redriven_at = now(), redrive_count = redrive_count + 1'
        " WHERE id = $1",
        row["id"],
    )


async def purge(conn: asyncpg.Connection, selection: Selection) -> dict[str, int]:
    """Erase the stored record of the selected dead letters; how many per service."""
    condition, params = where(selection)
    purged: dict[str, int] = {}
    for service in selection.services:
        if not await _has_dead_letters(conn, service):
            continue
        try:
            status = await conn.execute(
                f'UPDATE "{service}".dead_letters'
                " SET purged_at = now(), kafka_key = NULL, headers = NULL, payload = NULL"
                f" WHERE purged_at IS NULL AND {condition}",
                *params,
            )
        except SchemaMissing as error:
            raise _unmigrated(service, error) from error
        purged[service] = int(status.split()[-1])
    return purged
