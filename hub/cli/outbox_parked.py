"""Parked outbox rows of every service: list, retry, drop (``hub outbox parked|retry|drop|dropped``).

The relay parks a row the broker can never take (hub/runtime/outbox.py); the later rows of its
case on its topic wait behind it until an operator decides. ``retry`` un-parks it, once
the cause is fixed (a topic created, an ACL granted, a limit raised). ``drop`` deletes it
and records what was dropped, when, by whom and why, without the payload (personal data);
the rows behind it go out next. Row ids are the outbox's ``seq``, per service.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from hub.errors import ConfigurationError, SchemaMissing

_PARKED = """
    SELECT o.seq, o.topic, o.aggregateid, o.type, o.headers, length(o.payload) AS payload_bytes,
           o.created_at, o.parked_at, o.park_reason, o.attempts,
           (SELECT count(*) FROM {schema}.outbox later
            WHERE later.published_at IS NULL AND later.topic = o.topic
              AND later.aggregateid = o.aggregateid AND later.seq > o.seq) AS waiting_behind
    FROM {schema}.outbox o
    WHERE o.parked_at IS NOT NULL AND o.published_at IS NULL
    ORDER BY o.parked_at, o.seq
"""


@dataclass(frozen=True)
class ParkedRow:
    service: str
    seq: int
    topic: str
    key: str
    event_type: str
    event_id: str | None
    payload_bytes: int
    created_at: dt.datetime
    parked_at: dt.datetime
    reason: str
    attempts: int
    waiting_behind: int  # later rows of the same case and topic held up by it

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "created_at": self.created_at.isoformat(),
            "parked_at": self.parked_at.isoformat(),
        }


@dataclass(frozen=True)
class DroppedRow:
    service: str
    seq: int
    topic: str
    key: str
    event_type: str
    event_id: str | None
    payload_bytes: int
    park_reason: str | None
    dropped_at: dt.datetime
    dropped_by: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "dropped_at": self.dropped_at.isoformat()}


async def parked_rows(conn: asyncpg.Connection, services: Sequence[str]) -> list[ParkedRow]:
    """Every parked row of the services, oldest first."""
    found: list[ParkedRow] = []
    for service in await _with_outbox(conn, services):
        rows = await _fetch(conn, service, _PARKED.format(schema=f'"{service}"'))
        found += [_parked(service, row) for row in rows]
    return sorted(found, key=lambda row: (row.parked_at, row.service, row.seq))


async def retry_parked(conn: asyncpg.Connection, service: str, seq: int) -> bool:
    """Un-park row ``seq``: the relay tries it again at once. False if no such parked row."""
    status = await _execute(
        conn,
        service,
        f'UPDATE "{service}".outbox SET parked_at = NULL, park_reason = NULL, retry_at = NULL'
        " WHERE seq = $1 AND parked_at IS NOT NULL AND published_at IS NULL",
        seq,
    )
    if status.split()[-1] == "0":
        return False
    await _wake_relay(conn, service)
    return True


async def drop_parked(
    conn: asyncpg.Connection, service: str, seq: int, *, reason: str, operator: str
) -> DroppedRow | None:
    """Delete parked row ``seq``, keeping a record of it without its payload; None if no such row."""
    async with conn.transaction():
        row = await _fetchrow(
            conn,
            service,
            f'DELETE FROM "{service}".outbox'
            " WHERE seq = $1 AND parked_at IS NOT NULL AND published_at IS NULL"
            " RETURNING seq, id, topic, aggregatetype, aggregateid, type, headers, length(payload) AS"
            " payload_bytes, created_at, attempts, parked_at, park_reason",
            seq,
        )
        if row is None:
            return None
        dropped = await conn.fetchrow(
            f"""
            INSERT INTO "{service}".outbox_dropped (seq, id, topic, aggregatetype, aggregateid, type,
                event_id, payload_bytes, created_at, attempts, parked_at, park_reason, dropped_by, reason)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                    current_user || ' (' || $13 || ')', $14)
            RETURNING dropped_at, dropped_by
            """,
            row["seq"],
            row["id"],
            row["topic"],
            row["aggregatetype"],
            row["aggregateid"],
            row["type"],
            _event_id(row["headers"]),
            row["payload_bytes"],
            row["created_at"],
            row["attempts"],
            row["parked_at"],
            row["park_reason"],
            operator,
            reason,
        )
    await _wake_relay(conn, service)
    return DroppedRow(
        service=service,
        seq=row["seq"],
        topic=row["topic"],
        key=row["aggregateid"],
        event_type=row["type"],
        event_id=_event_id(row["headers"]),
        payload_bytes=row["payload_bytes"],
        park_reason=row["park_reason"],
        dropped_at=dropped["dropped_at"],
        dropped_by=dropped["dropped_by"],
        reason=reason,
    )


async def dropped_rows(conn: asyncpg.Connection, services: Sequence[str]) -> list[DroppedRow]:
    """What operators dropped, newest first."""
    found: list[DroppedRow] = []
    for service in await _with_outbox(conn, services):
        rows = await _fetch(
            conn,
            service,
            "SELECT seq, topic, aggregateid, type, event_id, payload_bytes, park_reason, dropped_at,"
            f' dropped_by, reason FROM "{service}".outbox_dropped',
        )
        found += [
            DroppedRow(
                service=service,
                seq=row["seq"],
                topic=row["topic"],
                key=row["aggregateid"],
                event_type=row["type"],
                event_id=row["event_id"],
                payload_bytes=row["payload_bytes"],
                park_reason=row["park_reason"],
                dropped_at=row["dropped_at"],
                dropped_by=row["dropped_by"],
                reason=row["reason"],
            )
            for row in rows
        ]
    return sorted(found, key=lambda row: (row.dropped_at, row.service, row.seq), reverse=True)


async def _with_outbox(conn: asyncpg.Connection, services: Sequence[str]) -> list[str]:
    """The services that ever ran against this database (their schema has an outbox)."""
    return [s for s in services if await conn.fetchval("SELECT to_regclass($1)", f'"{s}".outbox') is not None]


def _parked(service: str, row: Any) -> ParkedRow:
    return ParkedRow(
        service=service,
        seq=row["seq"],
        topic=row["topic"],
        key=row["aggregateid"],
        event_type=row["type"],
        event_id=_event_id(row["headers"]),
        payload_bytes=row["payload_bytes"],
        created_at=row["created_at"],
        parked_at=row["parked_at"],
        reason=row["park_reason"] or "",
        attempts=row["attempts"],
        waiting_behind=row["waiting_behind"],
    )


def _event_id(headers: str) -> str | None:
    for name, value in json.loads(headers):
        if name == "ce_id":
            return str(value)
    return None


async def _wake_relay(conn: asyncpg.Connection, service: str) -> None:
    """The relay listens on its schema's channel (hub/runtime/sql/0001): no need to wait for its poll."""
    await conn.execute("SELECT pg_notify($1, '')", f"outbox_{service}")


def unmigrated(service: str, error: SchemaMissing) -> Exception:
    return ConfigurationError(
        f"{service}: its outbox lacks the columns of migration hub-runtime 0003 ({error}); "
        "start the service once to migrate"
    )


async def _fetch(conn: asyncpg.Connection, service: str, query: str, *args: Any) -> list[Any]:
    try:
        return list(await conn.fetch(query, *args))
    except SchemaMissing as error:
        raise unmigrated(service, error) from error


async def _fetchrow(conn: asyncpg.Connection, service: str, query: str, *args: Any) -> Any:
    try:
        return await conn.fetchrow(query, *args)
    except SchemaMissing as error:
        raise unmigrated(service, error) from error


async def _execute(conn: asyncpg.Connection, service: str, query: str, *args: Any) -> str:
    try:
        return str(await conn.execute(query, *args))
    except SchemaMissing as error:
        raise unmigrated(service, error) from error
