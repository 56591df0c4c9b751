"""``hub vault status|rotate-master-key|retire-master-key``: the master key ring in operation.

The commands need the database (``HUB_DATABASE_URL``, else the running hub's endpoints)
and the ring's directory (``HUB_MASTER_KEY_FILE`` or ``$HUB_STATE_DIR/secrets``), which
they write to: new versions, renames, the index file. They never create a first master
key. ``hub/vault/rotate.py`` does the work; here it is only called and printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from hub.cli.database import database_settings, run_on_database
from hub.cli.output import print_json
from hub.vault import rotate as vault_rotate
from hub.vault.master import master_key_path

T = TypeVar("T")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vault = commands.add_parser("vault", help="the vault's master key ring (personal data at rest)")
    sub = vault.add_subparsers(dest="vault_command", required=True)
    status = sub.add_parser("status", help="master key versions and how many data keys each wraps")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.set_defaults(func=_status)
    rotate = sub.add_parser(
        "rotate-master-key",
        help="a new master key version becomes current and every data key is re-wrapped by it "
        "(run again to finish an interrupted rotation)",
    )
    rotate.add_argument(
        "--prepare",
        action="store_true",
        help="only write the new version as pending, for every replica to load before it is used",
    )
    rotate.add_argument(
        "--batch-size", type=int, default=vault_rotate.DEFAULT_BATCH, help="keys per transaction"
    )
    rotate.add_argument("--max-batches", type=int, help="stop after this many batches; run again to go on")
    rotate.add_argument("--json", action="store_true", help="print JSON instead of text")
    rotate.set_defaults(func=_rotate)
    retire = sub.add_parser(
        "retire-master-key", help="remove an old version from the ring once it wraps no data key"
    )
    retire.add_argument("version", type=int, help="the master key version to retire, from hub vault status")
    retire.add_argument(
        "--delete",
        action="store_true",
        help="delete its file instead of renaming it .retired (backups made before the rotation "
        "then no longer open)",
    )
    retire.add_argument("--json", action="store_true", help="print JSON instead of text")
    retire.set_defaults(func=_retire)


def _status(args: argparse.Namespace) -> int:
    status = _run(lambda conn, base: vault_rotate.vault_status(conn, base))
    if args.json:
        print_json(_jsonable(asdict(status)))
        return 0
    print(f"master key ring: {status.ring}")
    for v in reversed(status.versions):
        print(
            f"  version {v.number}  {v.key_id}  {v.state:<7}  {v.live} data key(s), {v.destroyed} destroyed"
        )
    for foreign in status.foreign:
        # Unreadable by any service with this ring: a retired version still in use, or another hub's key.
        counted = f"{foreign.live} data key(s), {foreign.destroyed} destroyed"
        print(f"  NOT IN THE RING  {foreign.master_key_id}  {counted}")
    return 0


def _progress(line: str) -> None:
    # On stderr: stdout carries the result alone, JSON included.
    print(f"· {line}", file=sys.stderr, flush=True)


def _rotate(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or (args.max_batches is not None and args.max_batches < 1):
        raise ValueError("--batch-size and --max-batches must be at least 1")
    rotation = _run(
        lambda conn, base: vault_rotate.rotate_master_key(
            conn,
            base,
            prepare=args.prepare,
            batch_size=args.batch_size,
            max_batches=args.max_batches,
            progress=_progress,
        )
    )
    keys = rotation.keys
    if args.json:
        print_json(_jsonable(asdict(rotation)))
    elif rotation.prepared:
        print(
            f"master key version {rotation.version} written as pending; once every service has it, "
            "run `hub vault rotate-master-key` to make it current"
        )
    else:
        what = "now current" if rotation.started else "current (finishing the earlier rotation)"
        print(
            f"master key version {rotation.version} {what}: {keys.rewrapped} data key(s) re-wrapped "
            f"in {keys.batches} batch(es), {keys.remaining} still under older versions"
        )
        if keys.unopenable:
            print(f"{len(keys.unopenable)} wrapped key(s) failed to authenticate and were left as they are:")
            for key_id in sorted(keys.unopenable):
                print(f"  {key_id}")
        if not keys.finished:
            print("not finished: run `hub vault rotate-master-key` again")
    return 0 if rotation.prepared or keys.finished else 1


def _retire(args: argparse.Namespace) -> int:
    retired = _run(
        lambda conn, base: vault_rotate.retire_master_key(conn, base, args.version, delete=args.delete)
    )
    if args.json:
        print_json({"version": args.version, "retired_file": None if retired is None else str(retired)})
    elif retired is None:
        print(f"master key version {args.version} removed from the ring, its file deleted")
    else:
        print(f"master key version {args.version} removed from the ring, its file kept as {retired}")
    return 0


def _run(work: Callable[[asyncpg.Connection, Path], Awaitable[T]]) -> T:
    settings = database_settings()
    base = master_key_path(settings)
    return run_on_database(
        settings,
        lambda conn: work(conn, base),
        application_name="hub-vault",
        no_tables="no vault tables in this database; start the hub once (`hub up`)",
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = [_jsonable(item) for item in value]
        return sorted(items) if isinstance(value, set) else items
    if isinstance(value, Path):
        return str(value)
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
