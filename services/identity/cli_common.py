"""What the identity commands share: checking input, sending a command to ``hub.admin``,
and reading identity's tables of the running hub."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from contracts import Contract, ParticipantId
from contracts.errors import describe_errors
from hub.cli.admin_wait import finish_from
from hub.cli.database import running_hub
from services.identity.adapters.postgres import run_command
from services.identity.admin_publisher import publish_admin_command
from services.identity.ports import Repositories

T = TypeVar("T")


def send(command: Contract, partner_id: str, args: argparse.Namespace) -> int:
    """Publish ``command`` and report it as ``args`` ask (``hub.cli.admin_wait``: ``--wait``, ``--json``)."""
    settings = running_hub()
    envelope = asyncio.run(publish_admin_command(settings, command, partner_id=partner_id))
    return finish_from(settings, envelope, args)


def checked_partner_id(value: str) -> str:
    try:
        ParticipantId.parse(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a partner id: expected instance/member class/member code/subsystem "
            "with member class FED, CAN, MUN or COM, e.g. CH/MUN/1061/einwohnerdienste"
        ) from None
    return value


def contract(model: type[Contract], **fields: Any) -> Contract:
    try:
        return model(**fields)
    except ValidationError as error:
        details = error.errors(include_input=False, include_url=False, include_context=False)
        raise ValueError(describe_errors(details)) from None  # one line, not pydantic's report


def in_identity_schema(work: Callable[[Repositories], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on identity's tables of the running hub's database
    (partners, keys, reviews: nothing that needs the vault's master key)."""
    return run_command(running_hub(), work)
