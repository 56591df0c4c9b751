"""``hub outbox status``: each service's outbox backlog, read from its schema.

A growing backlog or an old oldest row means a relay cannot publish (broker away, a
service down); published rows wait for the relay's retention purge.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import asyncpg

from hub.cli_output import print_table


@dataclass(frozen=True)
class OutboxStatus:
    service: str
    present: bool  # False: the service never ran against this database
    backlog: int = 0
    oldest_unpublished_s: float | None = None
    published_awaiting_purge: int = 0


async def outbox_status(conn: asyncpg.Connection, services: Sequence[str]) -> list[OutboxStatus]:
    statuses: list[OutboxStatus] = []
    for service in services:
        if await conn.fetchval("SELECT to_regclass($1)", f'"{service}".outbox') is None:
            statuses.append(OutboxStatus(service, present=False))
            continue
        row = await conn.fetchrow(
            f"""
            SELECT count(*) FILTER (WHERE published_at IS NULL) AS backlog,
                   extract(epoch FROM now() - min(created_at) FILTER (WHERE published_at IS NULL))
                       AS oldest_unpublished_s,
                   count(*) FILTER (WHERE published_at IS NOT NULL) AS published
            FROM "{service}".outbox
            """
        )
        oldest = row["oldest_unpublished_s"]
        statuses.append(
            OutboxStatus(
                service,
                present=True,
                backlog=int(row["backlog"]),
                oldest_unpublished_s=float(oldest) if oldest is not None else None,
                published_awaiting_purge=int(row["published"]),
            )
        )
    return statuses


def format_status(statuses: Sequence[OutboxStatus]) -> str:
    lines = [f"{'SERVICE':<15}{'BACKLOG':>9}{'OLDEST UNPUBLISHED':>20}{'PUBLISHED (TO PURGE)':>22}"]
    for s in statuses:
        if not s.present:
            lines.append(f"{s.service:<15}  no outbox (the service never started on this database)")
            continue
        oldest = f"{s.oldest_unpublished_s:.1f}s" if s.oldest_unpublished_s is not None else "-"
        lines.append(f"{s.service:<15}{s.backlog:>9}{oldest:>20}{s.published_awaiting_purge:>22}")
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    from hub.dlq_cli import operator_connection
    from services import SERVICE_NAMES

    async def read() -> list[OutboxStatus]:
        async with operator_connection() as conn:
            return await outbox_status(conn, SERVICE_NAMES)

    statuses = asyncio.run(read())
    print_table(statuses, as_json=args.json, table=format_status, jsonable=asdict)
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser("outbox", help="the services' transactional outboxes").add_subparsers(
        dest="outbox_command", required=True
    )
    status = outbox.add_parser("status", help="per service: backlog, oldest unpublished row, rows to purge")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_status)
