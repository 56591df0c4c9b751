"""``hub dlq list|show|redrive|purge``: dead letters of a running hub (hub/cli/dead_letters.py does the work).

The database is found like ``hub case show`` finds it: the ``HUB_*`` settings, else the
running ``hub up``'s ``endpoints.json``. Tables or ``--json`` go to stdout, notes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TypeVar

import asyncpg

from hub.cli import dead_letters as dlq
from hub.cli.database import running_hub
from hub.cli.output import aligned, print_json, print_table
from hub.errors import DatabaseError, DatabaseUnavailable
from hub.runtime.db import connect
from hub.security.operator_keys import operator_signing_key

T = TypeVar("T")


@asynccontextmanager
async def operator_connection() -> AsyncIterator[asyncpg.Connection]:
    """One connection to the running hub's database; database errors become one line."""
    settings = running_hub()
    try:
        conn = await connect(settings.database_dsn(), application_name="hub-cli")
    except DatabaseUnavailable as error:
        raise RuntimeError(f"database: {error}") from error
    try:
        yield conn
    except DatabaseError as error:
        raise RuntimeError(f"database: {error}") from error
    finally:
        await conn.close()


def run_with_connection(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """``work`` on one operator connection, in an event loop of its own."""

    async def run() -> T:
        async with operator_connection() as conn:
            return await work(conn)

    return asyncio.run(run())


_run = run_with_connection


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 date or time; without an offset it is the operator's local time."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return value if value.tzinfo is not None else value.astimezone()


def _services() -> tuple[str, ...]:
    from services import SERVICE_NAMES

    return SERVICE_NAMES


def selection(args: argparse.Namespace) -> dlq.Selection:
    ids = tuple(getattr(args, "id", None) or ())
    if ids and args.service is None:
        raise ValueError("--id needs --service: ids are per service")
    return dlq.Selection(
        services=(args.service,) if args.service else _services(),
        ids=ids,
        topic=args.topic,
        event_type=args.type,
        since=args.since,
        until=args.until,
        reason=args.reason,
        older_than_days=getattr(args, "older_than", None),
    )


def _require_narrowed(chosen: dlq.Selection, args: argparse.Namespace, verb: str) -> None:
    # A bare `redrive` or `purge` touching every dead letter of every service is rarely
    # meant; it has to be asked for.
    if not chosen.narrowed and not args.all:
        raise ValueError(f"{verb} needs --id, a filter or --all")


def _when(value: dt.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def format_table(rows: Sequence[dlq.DeadLetter]) -> str:
    header = ("ID", "SERVICE", "GROUP", "ORIGIN", "EVENT TYPE", "EVENT ID", "ERROR", "RECORDED", "STATE")
    return aligned(
        header,
        [
            (
                str(d.id),
                d.service,
                d.consumer_group,
                f"{d.topic}[{d.partition}]@{d.offset}",
                d.event_type or "-",
                d.event_id or "-",
                f"{d.error_class}: {_one_line(d.error_message, 60)}",
                _when(d.recorded_at),
                d.state + (f" x{d.redrive_count} {_when(d.redriven_at)}" if d.redrive_count else ""),
            )
            for d in rows
        ],
    )


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def format_content(content: dlq.DeadLetterContent) -> str:
    d = content.summary
    lines = [
        f"dead letter {d.id} of {d.service} ({d.state})",
        _field("consumer group", d.consumer_group),
        _field("original", f"{d.topic} partition {d.partition} offset {d.offset}"),
        _field("event", f"{d.event_type or '-'} {d.event_id or '-'}"),
        _field("error", f"{d.error_class}: {d.error_message}"),
        _field("recorded", d.recorded_at.isoformat()),
        _field("dead-letter topic", d.dead_letter_topic),
    ]
    if d.redrive_count:
        last = d.redriven_at.isoformat() if d.redriven_at else "-"
        lines.append(_field("redriven", f"{d.redrive_count}x, last {last}"))
    if d.purged_at is not None:
        lines.append(_field("purged", f"{d.purged_at.isoformat()} (key, headers and payload erased)"))
        return "\n".join(lines)
    if content.headers is None:
        lines.append("  (original record not stored: recorded before migration 0002)")
        return "\n".join(lines)
    if content.truncated:
        lines += _reference_lines(content)
    lines.append(_field("key", _render(dlq.decode_bytes(content.key))))
    lines.append("  headers" + (" (each cut short)" if content.truncated else ""))
    lines += [f"    {name}: {value}" for name, value in content.headers]
    label = f"payload (first {len(content.value or b'')} bytes)" if content.truncated else "payload"
    lines.append(_field(label, _render(dlq.decode_bytes(content.value))))
    return "\n".join(lines)


def _reference_lines(content: dlq.DeadLetterContent) -> list[str]:
    return [
        "  only a reference was kept: the record was over HUB_DEAD_LETTER_MAX_STORED_BYTES;",
        "  it cannot be redriven (the sender has to publish it again)",
        _field("original value", f"{content.original_size} bytes, sha256 {content.original_sha256}"),
    ]


def _field(label: str, value: str) -> str:
    return f"  {label:<18}{value}"


def _render(decoded: dict[str, str] | None) -> str:
    if decoded is None:
        return "(none)"
    if decoded["encoding"] == "utf-8":
        return decoded["text"]
    return f"(not UTF-8, base64) {decoded['data']}"


def _list(args: argparse.Namespace) -> int:
    chosen = selection(args)
    rows = _run(lambda conn: dlq.list_dead_letters(conn, chosen, limit=args.limit))
    print_table(
        rows, as_json=args.json, table=format_table, jsonable=dlq.DeadLetter.as_json, empty="no dead letters"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    content = _run(lambda conn: dlq.show_dead_letter(conn, args.service, args.dead_letter_id))
    if content is None:
        print(f"hub: error: no dead letter {args.dead_letter_id} in {args.service}", file=sys.stderr)
        return 1
    if args.json:
        print_json(content.as_json())
    else:
        print(format_content(content))
    return 0


def _redrive(args: argparse.Namespace) -> int:
    chosen = selection(args)
    _require_narrowed(chosen, args, "redrive")
    # The operator's key attests the redrive: the registry then accepts an old partner event.
    operator = operator_signing_key(running_hub())
    report = _run(
        lambda conn: dlq.redrive(
            conn, chosen, include_redriven=args.include_redriven, dry_run=args.dry_run, attest_with=operator
        )
    )
    verb = "would redrive" if args.dry_run else "redriven"
    if args.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "redriven": [asdict(r) for r in report.redriven],
                "skipped": [{"service": s, "id": i, "reason": why} for s, i, why in report.skipped],
                "services_not_running": report.services_not_running,
            }
        )
    else:
        for r in report.redriven:
            print(f"{verb} {r.service} {r.id} -> {r.topic} (ce_id {r.event_id or '-'})")
        for service, dead_letter_id, why in report.skipped:
            print(f"skipped {service} {dead_letter_id}: {why}")
        print(f"{len(report.redriven)} {verb}, {len(report.skipped)} skipped")
    for service in report.services_not_running:
        print(
            f"· {service} is not running: its redriven records wait in its outbox and are "
            f"published when it starts (`hub up` or `hub service run {service}`)",
            file=sys.stderr,
        )
    return 0


def _purge(args: argparse.Namespace) -> int:
    chosen = selection(args)
    _require_narrowed(chosen, args, "purge")
    purged = _run(lambda conn: dlq.purge(conn, chosen))
    if args.json:
        print_json({"purged": purged, "total": sum(purged.values())})
    else:
        detail = ", ".join(f"{service} {n}" for service, n in purged.items() if n)
        print(f"{sum(purged.values())} purged" + (f" ({detail})" if detail else ""))
    return 0


def _filters(command: argparse.ArgumentParser) -> None:
    command.add_argument("--service", choices=_services(), help="one service's dead letters only")
    command.add_argument("--topic", help="original topic")
    command.add_argument("--type", help="CloudEvents type (ce_type)")
    command.add_argument("--since", type=parse_time, help="recorded at or after (ISO 8601; local time)")
    command.add_argument("--until", type=parse_time, help="recorded before (ISO 8601; local time)")
    command.add_argument("--reason", help="text in the error class or message (case-insensitive)")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dead = commands.add_parser("dlq", help="dead letters: list, show, redrive, purge").add_subparsers(
        dest="dlq_command", required=True
    )
    listing = dead.add_parser("list", help="dead letters of every service, newest first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=100, help="at most this many, newest first (100)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(func=_list)

    show = dead.add_parser("show", help="one dead letter with its original headers and payload")
    show.add_argument(
        "dead_letter_id", type=int, metavar="ID", help="the dead letter's id, from hub dlq list"
    )
    show.add_argument("--service", choices=_services(), required=True, help="the service that recorded it")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=_show)

    again = dead.add_parser("redrive", help="re-publish to the original topic, same event id (outbox)")
    _filters(again)
    again.add_argument("--id", type=int, action="append", help="a dead letter id (with --service); repeat")
    again.add_argument("--include-redriven", action="store_true", help="filters also take redriven ones")
    again.add_argument("--all", action="store_true", help="every dead letter not yet redriven")
    again.add_argument("--dry-run", action="store_true", help="list what would be redriven, change nothing")
    again.add_argument("--json", action="store_true", help="print JSON instead of text")
    again.set_defaults(func=_redrive)

    purge = dead.add_parser("purge", help="erase stored records (personal data); keep that they failed")
    _filters(purge)
    purge.add_argument("--id", type=int, action="append", help="a dead letter id (with --service); repeat")
    purge.add_argument("--older-than", type=float, metavar="DAYS", help="recorded more than DAYS ago")
    purge.add_argument("--all", action="store_true", help="every dead letter")
    purge.add_argument("--json", action="store_true", help="print JSON instead of text")
    purge.set_defaults(func=_purge)
