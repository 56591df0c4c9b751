"""``hub outbox status|parked|retry|drop|dropped``: the services' outboxes, from their schemas.

The database is found like ``hub dlq`` finds it (hub/cli/dlq.py). ``status`` is the
backlog of every service (hub/cli/outbox_status.py); the others handle rows the relay parked
because the broker will never take them (hub/cli/outbox_parked.py).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from hub.cli import outbox_parked
from hub.cli.dlq import run_with_connection
from hub.cli.outbox_status import OutboxStatus, format_status, outbox_status
from hub.cli.output import aligned, print_json, print_table


def _services() -> tuple[str, ...]:
    from services import SERVICE_NAMES

    return SERVICE_NAMES


def _chosen(args: argparse.Namespace) -> tuple[str, ...]:
    return (args.service,) if args.service else _services()


def _status(args: argparse.Namespace) -> int:
    statuses = run_with_connection(lambda conn: outbox_status(conn, _services()))
    print_table(statuses, as_json=args.json, table=format_status, jsonable=OutboxStatus.as_json)
    return 0


def format_parked(rows: Sequence[outbox_parked.ParkedRow]) -> str:
    header = ("ID", "SERVICE", "TOPIC", "KEY", "EVENT ID", "BYTES", "PARKED", "WAITING BEHIND", "REASON")
    return aligned(
        header,
        [
            (
                str(r.seq),
                r.service,
                r.topic,
                r.key[:60],
                r.event_id or "-",
                str(r.payload_bytes),
                r.parked_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                str(r.waiting_behind),
                r.reason,
            )
            for r in rows
        ],
    )


def _parked(args: argparse.Namespace) -> int:
    rows = run_with_connection(lambda conn: outbox_parked.parked_rows(conn, _chosen(args)))
    print_table(
        rows,
        as_json=args.json,
        table=format_parked,
        jsonable=outbox_parked.ParkedRow.as_json,
        empty="no parked rows",
    )
    return 0


def _retry(args: argparse.Namespace) -> int:
    done = run_with_connection(lambda conn: outbox_parked.retry_parked(conn, args.service, args.row_id))
    if not done:
        print(f"hub: error: no parked row {args.row_id} in {args.service}'s outbox", file=sys.stderr)
        return 1
    print(f"{args.service} {args.row_id} un-parked: the relay sends it again now")
    return 0


def _drop(args: argparse.Namespace) -> int:
    dropped = run_with_connection(
        lambda conn: outbox_parked.drop_parked(
            conn, args.service, args.row_id, reason=args.reason, operator=getpass.getuser()
        )
    )
    if dropped is None:
        print(f"hub: error: no parked row {args.row_id} in {args.service}'s outbox", file=sys.stderr)
        return 1
    if args.json:
        print_json(dropped.as_json())
    else:
        print(
            f"{args.service} {args.row_id} dropped ({dropped.topic}, ce_id {dropped.event_id or '-'}): "
            "it will never be published; recorded without its payload (hub outbox dropped)"
        )
    return 0


def format_dropped(rows: Sequence[outbox_parked.DroppedRow]) -> str:
    header = ("ID", "SERVICE", "TOPIC", "KEY", "EVENT ID", "DROPPED", "BY", "WHY", "PARKED FOR")
    return aligned(
        header,
        [
            (
                str(r.seq),
                r.service,
                r.topic,
                r.key[:60],
                r.event_id or "-",
                r.dropped_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                r.dropped_by,
                r.reason,
                r.park_reason or "-",
            )
            for r in rows
        ],
    )


def _dropped(args: argparse.Namespace) -> int:
    rows = run_with_connection(lambda conn: outbox_parked.dropped_rows(conn, _chosen(args)))
    print_table(
        rows,
        as_json=args.json,
        table=format_dropped,
        jsonable=outbox_parked.DroppedRow.as_json,
        empty="no dropped rows",
    )
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser("outbox", help="the services' transactional outboxes").add_subparsers(
        dest="outbox_command", required=True
    )
    status = outbox.add_parser(
        "status", help="per service: backlog, oldest unpublished row, rows retrying, parked, to purge"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.set_defaults(func=_status)

    parked = outbox.add_parser("parked", help="rows the broker refused for good, holding up their case")
    parked.add_argument("--service", choices=_services(), help="only this service's outbox (all by default)")
    parked.add_argument("--json", action="store_true", help="print JSON instead of text")
    parked.set_defaults(func=_parked)

    retry = outbox.add_parser("retry", help="un-park a row once its cause is fixed; the relay sends it again")
    retry.add_argument("row_id", type=int, metavar="ID", help="the parked row's id, from hub outbox parked")
    retry.add_argument(
        "--service", choices=_services(), required=True, help="the service whose outbox holds the row"
    )
    retry.set_defaults(func=_retry)

    drop = outbox.add_parser("drop", help="delete a parked row (never published); its record stays")
    drop.add_argument("row_id", type=int, metavar="ID", help="the parked row's id, from hub outbox parked")
    drop.add_argument(
        "--service", choices=_services(), required=True, help="the service whose outbox holds the row"
    )
    drop.add_argument("--reason", required=True, help="why it is dropped (kept with the record)")
    drop.add_argument("--json", action="store_true", help="print JSON instead of text")
    drop.set_defaults(func=_drop)

    dropped = outbox.add_parser("dropped", help="what was dropped, when, by whom and why (no payload)")
    dropped.add_argument(
        "--service", choices=_services(), help="only this service's dropped rows (all by default)"
    )
    dropped.add_argument("--json", action="store_true", help="print JSON instead of text")
    dropped.set_defaults(func=_dropped)
