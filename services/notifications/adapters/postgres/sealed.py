"""Sealing a row's personal data under the data key of its case's person, and opening it.

Recipient, subject and body of a notice, subject and body of an inbox message, are sealed
together into the row's ``sealed`` column (the plain columns hold ''). The context binds a
sealed value to its table, column and row: copied to another row, it fails to open. A row
whose person is erased reads as erased; one whose value does not authenticate, as
tampered (logged: one bad row must not stop every other notice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from hub.errors import ConfigurationError
from hub.vault import store as vault_store
from hub.vault.crypto import Erased, MasterKey, TamperedCiphertext, case_ref
from services.notifications.domain import ERASED_REASON, TAMPERED_REASON, UNREADABLE_TEXT

log = logging.getLogger(__name__)


def notice_context(notification_id: str) -> str:
    return f"notifications.notifications.sealed:{notification_id}"


def inbox_context(notification_id: str) -> str:
    return f"notifications.inbox_messages.sealed:{notification_id}"


def required(master: MasterKey | None) -> MasterKey:
    """The master key, for a store that was opened without one (a command that needs none)."""
    if master is None:
        raise ConfigurationError("personal data is sealed: this needs the vault's master key")
    return master


async def seal_each_for_case(
    conn: asyncpg.Connection, master: MasterKey, values: Sequence[tuple[str, Any, str]]
) -> list[bytes]:
    """Each (case id, value, context): the value sealed under the case's person's key (a
    tombstone if that person is erased). One key lookup per case, not per value: a request's
    notice and its inbox copy share theirs."""
    keys = {}
    for case_id in dict.fromkeys(case_id for case_id, _, _ in values):
        keys[case_id] = await vault_store.key_for(conn, master, case_ref(case_id))
    return [vault_store.seal_json(keys[case_id], value, context) for case_id, value, context in values]


async def opened(
    conn: asyncpg.Connection,
    master: MasterKey,
    rows: Sequence[asyncpg.Record],
    *,
    context: Callable[[asyncpg.Record], str],
    fields: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Each row as a dict with ``fields`` taken from its sealed value; ``unreadable`` says
    why they could not be (and then they read as a marker text)."""
    values = await vault_store.open_json_each(conn, master, [(row["sealed"], context(row)) for row in rows])
    result = []
    for row, value in zip(rows, values, strict=True):
        item = {name: column for name, column in dict(row).items() if name != "sealed"}
        reason = (
            ERASED_REASON
            if isinstance(value, Erased)
            else TAMPERED_REASON
            if isinstance(value, TamperedCiphertext)
            else None
        )
        if reason == TAMPERED_REASON:
            log.error("sealed value of %s does not authenticate: changed or moved", context(row))
        if reason is None:
            item |= {name: value[name] for name in fields} | {"unreadable": None}
        else:
            item |= dict.fromkeys(fields, UNREADABLE_TEXT[reason]) | {"unreadable": reason}
        result.append(item)
    return result
