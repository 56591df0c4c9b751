"""Notifications commands for ``hub``: the inbox, citizens' preferences, partner webhooks.

``hub inbox list CITIZEN_ID [--json]`` · ``hub notifications prefer CITIZEN_ID --channel C`` ·
``hub notifications opt-out|opt-in CITIZEN_ID`` · ``hub webhook add PARTNER_ID URL
--secret-file F`` · ``hub webhook list [--json]``. They work on the database of the
running hub (``hub up``) or the one ``HUB_DATABASE_URL`` names. Secrets are read from a
file, never from the command line (which other users can see), and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from pydantic import TypeAdapter, ValidationError

from contracts import Channel, ParticipantIdStr
from hub.cli.output import print_rows
from hub.runtime.db import create_pool
from hub.runtime.endpoints import running_hub_settings
from hub.runtime.migrations import apply_migrations, load_migrations
from hub.runtime.settings import HubSettings
from hub.vault.master import installed_as, load_master_key
from hub.vault.schema import migrate_vault
from services.notifications import citizens, webhook_endpoints

NAME = "notifications"  # not imported from bootstrap: that would load Kafka clients for every `hub` call
_PARTNER_ID: TypeAdapter[str] = TypeAdapter(ParticipantIdStr)
_CITIZEN_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.INBOX)
Action = Callable[[asyncpg.Connection, argparse.Namespace], Awaitable[int]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inbox = commands.add_parser("inbox", help="a citizen's in-app inbox").add_subparsers(
        dest="inbox_command", required=True
    )
    listing = inbox.add_parser("list", help="a citizen's messages, newest first")
    listing.add_argument("citizen_id")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_run(_inbox_list))

    notifications = commands.add_parser("notifications", help="citizens' channel and opt-out")
    choices = notifications.add_subparsers(dest="notifications_command", required=True)
    prefer = choices.add_parser("prefer", help="the channel a citizen is told on")
    prefer.add_argument("citizen_id")
    prefer.add_argument("--channel", required=True, choices=[c.value for c in _CITIZEN_CHANNELS])
    prefer.set_defaults(func=_run(_prefer))
    for name, opted_out, text in (
        ("opt-out", True, "no notices that are not mandatory"),
        ("opt-in", False, "every notice again"),
    ):
        command = choices.add_parser(name, help=text)
        command.add_argument("citizen_id")
        command.set_defaults(func=_run(_opt(opted_out)))

    webhook = commands.add_parser("webhook", help="partners that receive deliveries by HTTPS").add_subparsers(
        dest="webhook_command", required=True
    )
    add = webhook.add_parser("add", help="add or replace a partner's webhook")
    add.add_argument("partner_id", help="e.g. CH/MUN/1059/einwohnerdienste")
    add.add_argument("url")
    add.add_argument("--secret-file", required=True, type=Path, help="file holding the signing secret")
    add.set_defaults(func=_run(_webhook_add))
    listed = webhook.add_parser("list", help="partners with a webhook (secrets are not shown)")
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(func=_run(_webhook_list))


def _run(action: Action) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def main() -> int:
            async with _connection() as conn:
                return await action(conn, args)

        return asyncio.run(main())

    return command


@asynccontextmanager
async def _connection() -> AsyncIterator[asyncpg.Connection]:
    settings = running_hub_settings(HubSettings())
    pool = await create_pool(settings.database_dsn(), NAME, size=1)
    try:
        async with pool.acquire() as conn:
            # The service may never have run against this database; its tables are needed now.
            migrations = load_migrations("hub-runtime", "hub.runtime.sql") + load_migrations(
                NAME, "services.notifications.migrations"
            )
            await apply_migrations(conn, migrations)
            await migrate_vault(conn)
            yield conn
    except asyncpg.PostgresError as error:
        raise RuntimeError(f"database: {error}") from error
    finally:
        await pool.close()


async def _inbox_list(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    # Messages are sealed under their person's data key: the hub's master key opens them.
    with installed_as(load_master_key(running_hub_settings(HubSettings()), create=False)):
        messages = await citizens.inbox_of(conn, args.citizen_id)
    print_rows(
        messages,
        as_json=args.json,
        # An asterisk marks what the citizen has not read yet.
        line=lambda m: (
            f"{' ' if m.read_at else '*'} {m.delivered_at:%Y-%m-%d %H:%M}  {m.case_id}  {m.subject}"
        ),
        jsonable=lambda m: m.as_json(),
    )
    return 0


async def _prefer(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    await citizens.prefer_channel(conn, args.citizen_id, Channel(args.channel))
    print(f"{args.citizen_id}: told by {args.channel}")
    return 0


def _opt(opted_out: bool) -> Action:
    async def opt(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
        await citizens.set_opted_out(conn, args.citizen_id, opted_out)
        what = "mandatory notices only" if opted_out else "every notice"
        print(f"{args.citizen_id}: {what}")
        return 0

    return opt


async def _webhook_add(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    try:
        partner_id = _PARTNER_ID.validate_python(args.partner_id)
    except ValidationError:
        example = "e.g. CH/MUN/1061/einwohnerdienste"
        raise ValueError(f"{args.partner_id!r} is not a participant id ({example})") from None
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    await webhook_endpoints.put_webhook(conn, partner_id, args.url, secret)
    print(f"{partner_id}: deliveries go to {args.url}")
    return 0


async def _webhook_list(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    rows = [
        {
            "partner_id": w.partner_id,
            "topic": w.topic,
            "url": w.url,
            "updated_at": w.updated_at.isoformat() if w.updated_at else None,
        }
        for w in await webhook_endpoints.all_webhooks(conn)
    ]
    print_rows(
        rows, as_json=args.json, line=lambda row: f"{row['partner_id']}  {row['url']}  ({row['topic']})"
    )
    return 0
