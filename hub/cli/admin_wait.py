"""``--wait`` and ``--json`` of the commands sent on ``hub.admin``: was the command applied?

A command on ``hub.admin`` is applied, or refused, later and elsewhere: by the service that
handles its type. Both leave a trace in that service's schema, in the transaction that decides
(``hub.runtime.consumer``): an applied command claims its ``ce_source`` + ``ce_id`` in the
service's ``inbox`` under the admin route's consumer group; a refused one is released from it
and recorded in ``dead_letters`` with its ``ce_id`` and the reason. So the CLI polls for those
two rows until one appears or the timeout passes; the dead letter is looked at first, though
both never exist for one command of one consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass
from typing import Literal

import asyncpg

from contracts import Envelope
from contracts.admin import ChangePartnerStatus, RegisterPartner, RegisterPartnerKey, RevokePartnerKey
from hub.cli.database import run_on_database
from hub.cli.exit_codes import ExitCode
from hub.cli.output import print_json
from hub.runtime.inbox import event_key
from hub.runtime.settings import HubSettings

Outcome = Literal["sent", "accepted", "refused", "no-answer"]
DEFAULT_WAIT_S = 30.0
POLL_INTERVAL_S = 0.2

# The service (its schema) and the admin route's consumer group that apply each command type;
# any other type on hub.admin (a subscription, a test case's opening) is the registry's.
_IDENTITY_COMMANDS = frozenset(
    command.event_type
    for command in (RegisterPartner, ChangePartnerStatus, RegisterPartnerKey, RevokePartnerKey)
)
IDENTITY_ADMIN = ("identity", "hub.identity.admin")
REGISTRY_ADMIN = ("registry", "hub.registry.admin")


def applying_consumer(event_type: str) -> tuple[str, str]:
    """(schema, consumer group) of the service that applies commands of ``event_type``."""
    return IDENTITY_ADMIN if event_type in _IDENTITY_COMMANDS else REGISTRY_ADMIN


@dataclass(frozen=True)
class CommandResult:
    """What became of one command: only ``sent`` without ``--wait``."""

    event_id: str
    event_type: str
    outcome: Outcome
    service: str
    reason: str | None = None
    case_id: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        return {
            "sent": ExitCode.OK,
            "accepted": ExitCode.OK,
            "refused": ExitCode.REFUSED,
            "no-answer": ExitCode.NO_ANSWER,
        }[self.outcome]

    def as_json(self) -> dict[str, str | None]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "outcome": self.outcome,
            "service": self.service,
            "reason": self.reason,
            "case_id": self.case_id,
        }

    def as_text(self) -> str:
        what = f"{self.event_type} {self.event_id}" + (f" (case {self.case_id})" if self.case_id else "")
        if self.outcome == "sent":
            return f"sent {what}"
        if self.outcome == "accepted":
            return f"accepted by {self.service}: {what}"
        if self.outcome == "refused":
            return f"refused by {self.service}: {what}: {self.reason}"
        return f"no answer from {self.service} yet: {what} (it may still be applied; see hub dlq list)"


async def await_outcome(
    conn: asyncpg.Connection, envelope: Envelope, *, timeout_s: float, poll_s: float = POLL_INTERVAL_S
) -> CommandResult:
    """Poll the applying service's tables until ``envelope``'s command is applied or refused."""
    schema, consumer = applying_consumer(envelope.type)
    deadline = time.monotonic() + timeout_s
    while True:
        refusal = await conn.fetchrow(
            f"SELECT error_class, error_message FROM {schema}.dead_letters "
            "WHERE consumer = $1 AND event_id = $2 ORDER BY id DESC LIMIT 1",
            consumer,
            envelope.id,
        )
        if refusal is not None:
            reason = f"{refusal['error_class']}: {refusal['error_message']}"
            return _result(envelope, "refused", schema, reason)
        applied = await conn.fetchval(
            f"SELECT true FROM {schema}.inbox WHERE consumer = $1 AND event_key = $2",
            consumer,
            event_key(envelope),
        )
        if applied:
            return _result(envelope, "accepted", schema)
        if time.monotonic() >= deadline:
            return _result(
                envelope, "no-answer", schema, f"neither applied nor refused within {timeout_s:g}s"
            )
        await asyncio.sleep(poll_s)


def _result(envelope: Envelope, outcome: Outcome, service: str, reason: str | None = None) -> CommandResult:
    case_id = None if envelope.businessprocessid.startswith("partner:") else envelope.businessprocessid
    return CommandResult(envelope.id, envelope.type, outcome, service, reason, case_id)


def sent(envelope: Envelope) -> CommandResult:
    return _result(envelope, "sent", applying_consumer(envelope.type)[0])


def wait_for(settings: HubSettings, envelope: Envelope, *, timeout_s: float) -> CommandResult:
    """``await_outcome`` on a connection of its own to the hub's database."""
    return run_on_database(
        settings,
        lambda conn: await_outcome(conn, envelope, timeout_s=timeout_s),
        no_tables="no service tables in this database; start the hub once (`hub up`)",
        application_name="hub-cli-wait",
    )


def report(result: CommandResult, *, as_json: bool) -> int:
    """Print ``result`` (one JSON object, or one line) and return its exit code."""
    if as_json:
        print_json(result.as_json())
    else:
        print(result.as_text())
    return int(result.exit_code)


def finish(settings: HubSettings, envelope: Envelope, *, wait: bool, timeout_s: float, as_json: bool) -> int:
    """What every admin command does once its command is on ``hub.admin``."""
    result = wait_for(settings, envelope, timeout_s=timeout_s) if wait else sent(envelope)
    return report(result, as_json=as_json)


def add_wait_options(command: argparse.ArgumentParser) -> None:
    """``--wait``, ``--timeout`` and ``--json`` for a command sent on ``hub.admin``."""
    command.add_argument(
        "--wait",
        action="store_true",
        help="wait until the hub applied or refused the command; exit 3 if refused (with the reason), "
        "4 if no answer within --timeout",
    )
    command.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_S,
        help=f"with --wait: seconds to wait for the answer ({DEFAULT_WAIT_S:g})",
    )
    command.add_argument(
        "--json", action="store_true", help="print one JSON object: event id, outcome, reason"
    )


def finish_from(settings: HubSettings, envelope: Envelope, args: argparse.Namespace) -> int:
    """``finish`` with the options ``add_wait_options`` added to ``args``."""
    return finish(settings, envelope, wait=args.wait, timeout_s=args.timeout, as_json=args.json)
