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
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from contracts import Channel, ParticipantIdStr
from hub.cli.database import running_hub
from hub.cli.output import print_json, print_rows
from hub.vault.master import load_master_key
from services.notifications.adapters.postgres import command_repositories
from services.notifications.ports import Repositories

_PARTNER_ID: TypeAdapter[str] = TypeAdapter(ParticipantIdStr)
_CITIZEN_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.INBOX)
Action = Callable[[Repositories, argparse.Namespace], Awaitable[int]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inbox = commands.add_parser("inbox", help="a citizen's in-app inbox").add_subparsers(
        dest="inbox_command", required=True
    )
    listing = inbox.add_parser("list", help="a citizen's messages, newest first")
    listing.add_argument("citizen_id", help="the citizen id (citizen-services pseudonym)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(func=_run(_inbox_list, opens_sealed=True))

    notifications = commands.add_parser("notifications", help="citizens' channel and opt-out")
    choices = notifications.add_subparsers(dest="notifications_command", required=True)
    prefer = choices.add_parser("prefer", help="the channel a citizen is told on")
    prefer.add_argument("citizen_id", help="the citizen id (citizen-services pseudonym)")
    prefer.add_argument(
        "--channel",
        required=True,
        choices=[c.value for c in _CITIZEN_CHANNELS],
        help="where the citizen wants their notices",
    )
    prefer.set_defaults(func=_run(_prefer))
    for name, opted_out, text in (
        ("opt-out", True, "no notices that are not mandatory"),
        ("opt-in", False, "every notice again"),
    ):
        command = choices.add_parser(name, help=text)
        command.add_argument("citizen_id", help="the citizen id (citizen-services pseudonym)")
        command.set_defaults(func=_run(_opt(opted_out)))

    webhook = commands.add_parser("webhook", help="partners that receive deliveries by HTTPS").add_subparsers(
        dest="webhook_command", required=True
    )
    add = webhook.add_parser("add", help="add or replace a partner's webhook")
    add.add_argument("partner_id", help="e.g. CH/MUN/1059/einwohnerdienste")
    add.add_argument("url", help="the partner's HTTPS endpoint that receives its deliveries")
    add.add_argument("--secret-file", required=True, type=Path, help="file holding the signing secret")
    # Unlike the commands on hub.admin, this one writes the notifications service's table itself:
    # it is applied when the command returns, so --wait has nothing to wait for.
    add.add_argument(
        "--wait",
        action="store_true",
        help="accepted for scripts that pass it to every admin command: the webhook is stored "
        "before the command returns",
    )
    add.add_argument("--json", action="store_true", help="print one JSON object: partner, url, outcome")
    add.set_defaults(func=_run(_webhook_add))
    listed = webhook.add_parser("list", help="partners with a webhook (secrets are not shown)")
    listed.add_argument("--json", action="store_true", help="print JSON instead of text")
    listed.set_defaults(func=_run(_webhook_list))


def _run(action: Action, *, opens_sealed: bool = False) -> Callable[[argparse.Namespace], int]:
    """``opens_sealed``: the command reads personal data, sealed under the person's data key,
    which the hub's master key opens; the other commands work without it."""

    def command(args: argparse.Namespace) -> int:
        settings = running_hub()
        master = load_master_key(settings, create=False) if opens_sealed else None

        async def main() -> int:
            async with command_repositories(settings, master) as stores:
                return await action(stores, args)

        return asyncio.run(main())

    return command


async def _inbox_list(stores: Repositories, args: argparse.Namespace) -> int:
    messages = await stores.inbox.of(args.citizen_id)
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


async def _prefer(stores: Repositories, args: argparse.Namespace) -> int:
    await stores.preferences.prefer_channel(args.citizen_id, Channel(args.channel))
    print(f"{args.citizen_id}: told by {args.channel}")
    return 0


def _opt(opted_out: bool) -> Action:
    async def opt(stores: Repositories, args: argparse.Namespace) -> int:
        await stores.preferences.set_opted_out(args.citizen_id, opted_out)
        what = "mandatory notices only" if opted_out else "every notice"
        print(f"{args.citizen_id}: {what}")
        return 0

    return opt


async def _webhook_add(stores: Repositories, args: argparse.Namespace) -> int:
    try:
        partner_id = _PARTNER_ID.validate_python(args.partner_id)
    except ValidationError:
        example = "e.g. CH/MUN/1061/einwohnerdienste"
        raise ValueError(f"{args.partner_id!r} is not a participant id ({example})") from None
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    await stores.webhooks.put(partner_id, args.url, secret)
    if args.json:
        print_json(
            {"partner_id": partner_id, "url": args.url, "outcome": "accepted", "service": "notifications"}
        )
    else:
        print(f"{partner_id}: deliveries go to {args.url}")
    return 0


async def _webhook_list(stores: Repositories, args: argparse.Namespace) -> int:
    rows = [
        {
            "partner_id": w.partner_id,
            "topic": w.topic,
            "url": w.url,
            "updated_at": w.updated_at.isoformat() if w.updated_at else None,
        }
        for w in await stores.webhooks.all()
    ]
    print_rows(
        rows, as_json=args.json, line=lambda row: f"{row['partner_id']}  {row['url']}  ({row['topic']})"
    )
    return 0
