"""``hub outbox status``: each service's outbox backlog, read from its schema.

A growing backlog or an old oldest row means a relay cannot publish (broker away, a
service down); rows retrying failed once and wait for their next try; parked rows the
broker will never take wait for an operator (``hub outbox parked``); published rows wait
for the relay's retention purge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from hub.cli.outbox_parked import unmigrated
from hub.errors import SchemaMissing

_FIGURES = """
    SELECT count(*) FILTER (WHERE waiting) AS backlog,
           extract(epoch FROM now() - min(created_at) FILTER (WHERE waiting)) AS oldest_unpublished_s,
           count(*) FILTER (WHERE published_at IS NOT NULL) AS published,
           count(*) FILTER (WHERE waiting AND retry_at > now()) AS retrying,
           count(*) FILTER (WHERE parked) AS parked,
           extract(epoch FROM now() - min(created_at) FILTER (WHERE parked)) AS oldest_parked_s
    FROM (SELECT created_at, published_at, retry_at,
                 published_at IS NULL AND parked_at IS NULL AS waiting,
                 published_at IS NULL AND parked_at IS NOT NULL AS parked
          FROM {schema}.outbox) AS rows
"""
_REASONS = """
    SELECT park_reason AS reason, count(*) AS count FROM {schema}.outbox
    WHERE published_at IS NULL AND parked_at IS NOT NULL
    GROUP BY park_reason ORDER BY count(*) DESC, park_reason LIMIT 5
"""


@dataclass(frozen=True)
class OutboxStatus:
    service: str
    present: bool  # False: the service never ran against this database
    backlog: int = 0  # rows the relay still has to publish (parked ones apart)
    oldest_unpublished_s: float | None = None
    published_awaiting_purge: int = 0
    retrying: int = 0  # of the backlog: failed and waiting for their next try
    parked: int = 0
    oldest_parked_s: float | None = None
    park_reasons: list[dict[str, Any]] = field(default_factory=list)  # reason, count; most frequent first

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "present": self.present,
            "backlog": self.backlog,
            "oldest_unpublished_s": self.oldest_unpublished_s,
            "published_awaiting_purge": self.published_awaiting_purge,
            "retrying": self.retrying,
            "parked": self.parked,
            "oldest_parked_s": self.oldest_parked_s,
            "park_reasons": self.park_reasons,
        }


async def outbox_status(conn: asyncpg.Connection, services: Sequence[str]) -> list[OutboxStatus]:
    statuses: list[OutboxStatus] = []
    for service in services:
        if await conn.fetchval("SELECT to_regclass($1)", f'"{service}".outbox') is None:
            statuses.append(OutboxStatus(service, present=False))
            continue
        statuses.append(await _status(conn, service))
    return statuses


async def _status(conn: asyncpg.Connection, service: str) -> OutboxStatus:
    schema = f'"{service}"'
    try:
        row = await conn.fetchrow(_FIGURES.format(schema=schema))
        reasons = await conn.fetch(_REASONS.format(schema=schema)) if row["parked"] else []
    except SchemaMissing as error:
        raise unmigrated(service, error) from error
    return OutboxStatus(
        service,
        present=True,
        backlog=int(row["backlog"]),
        oldest_unpublished_s=_seconds(row["oldest_unpublished_s"]),
        published_awaiting_purge=int(row["published"]),
        retrying=int(row["retrying"]),
        parked=int(row["parked"]),
        oldest_parked_s=_seconds(row["oldest_parked_s"]),
        park_reasons=[{"reason": r["reason"], "count": int(r["count"])} for r in reasons],
    )


def _seconds(value: Any) -> float | None:
    return float(value) if value is not None else None


def format_status(statuses: Sequence[OutboxStatus]) -> str:
    lines = [
        f"{'SERVICE':<15}{'BACKLOG':>9}{'OLDEST UNPUBLISHED':>20}{'PUBLISHED (TO PURGE)':>22}"
        f"{'RETRYING':>10}{'PARKED':>8}"
    ]
    for s in statuses:
        if not s.present:
            lines.append(f"{s.service:<15}  no outbox (the service never started on this database)")
            continue
        oldest = _age(s.oldest_unpublished_s)
        lines.append(
            f"{s.service:<15}{s.backlog:>9}{oldest:>20}{s.published_awaiting_purge:>22}{s.retrying:>10}{s.parked:>8}"
        )
    for s in statuses:
        if s.parked:
            lines.append(
                f"{s.service}: {s.parked} parked, the oldest written {_age(s.oldest_parked_s)} ago "
                "(hub outbox parked; retry or drop):"
            )
            lines += [f"  {r['count']}x {r['reason']}" for r in s.park_reasons]
    return "\n".join(lines)


def _age(seconds: float | None) -> str:
    return f"{seconds:.1f}s" if seconds is not None else "-"
