"""SQL of the notifications lifecycle: queue, claim, finish, and the status history.

Recipient, subject and body are personal data (an address, names, a reason): they are
sealed together under the data key of the case's person (``hub/vault.py``) in ``sealed``;
the plain columns hold ''. A notice whose person is erased reads as erased: the
dispatcher fails it with reason "erased" instead of sending it (and one whose sealed value
was tampered with, with reason "tampered": one bad row must not stop every other notice).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import DeliveryStatus
from hub.vault import store as vault_store
from hub.vault.crypto import ERASED_TEXT, Erased, TamperedCiphertext, case_ref
from hub.vault.master import installed

ERASED_REASON = "erased"
TAMPERED_REASON = "tampered"
UNREADABLE_TEXT = {ERASED_REASON: ERASED_TEXT, TAMPERED_REASON: "[unreadable]"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewNotification:
    notification_id: str
    case_id: str
    channel: str
    recipient: str  # address on the channel: email, E.164 number, citizen id (inbox), partner id (webhook)
    template: str
    subject: str
    body: str
    test_delivery: bool
    traceparent: str | None
    tracestate: str | None
    language: str | None = None
    template_version: int | None = None
    template_source: str | None = None
    citizen_id: str | None = None
    mandatory: bool = True


@dataclass(frozen=True)
class Pending:
    notification_id: str
    case_id: str
    channel: str
    recipient: str
    template: str
    subject: str
    body: str
    language: str | None
    test_delivery: bool
    attempts: int
    traceparent: str | None
    tracestate: str | None
    # Why recipient, subject and body cannot be read: ERASED_REASON (the person's key is
    # destroyed) or TAMPERED_REASON; None: readable.
    unreadable: str | None = None

    @property
    def erased(self) -> bool:
        return self.unreadable == ERASED_REASON


def sealed_context(notification_id: str) -> str:
    """Binds the sealed value to its table, column and row: moved elsewhere, it fails to open."""
    return f"notifications.notifications.sealed:{notification_id}"


async def opened(
    conn: asyncpg.Connection,
    rows: Sequence[asyncpg.Record],
    *,
    context: Callable[[asyncpg.Record], str],
    fields: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Each row as a dict with ``fields`` taken from its sealed value, or from the plain
    columns for a row stored before encryption; ``unreadable`` says why a value is missing."""
    sealed = [(row["sealed"], context(row)) for row in rows if row["sealed"] is not None]
    values = iter(await vault_store.open_json_each(conn, installed(), sealed) if sealed else [])
    result = []
    for row in rows:
        item = {name: value for name, value in dict(row).items() if name != "sealed"}
        value = next(values) if row["sealed"] is not None else None
        reason = (
            ERASED_REASON
            if isinstance(value, Erased)
            else TAMPERED_REASON
            if isinstance(value, TamperedCiphertext)
            else None
        )
        if reason == TAMPERED_REASON:
            log.error("sealed value of %s does not authenticate: changed or moved", context(row))
        if reason is not None:
            item |= dict.fromkeys(fields, UNREADABLE_TEXT[reason]) | {"unreadable": reason}
        elif value is not None:
            item |= {name: value[name] for name in fields}
        result.append(item)
    return result


async def seal_for_case(conn: asyncpg.Connection, case_id: str, value: Any, context: str) -> bytes:
    """``value`` sealed under the case's person's key (a tombstone if that person is erased)."""
    key = await vault_store.key_for(conn, installed(), case_ref(case_id))
    return vault_store.seal_json(key, value, context)


async def insert_notification(conn: asyncpg.Connection, new: NewNotification) -> bool:
    """Queue as 'created'; False if this notification id exists (a redelivered request)."""
    sealed = await seal_for_case(
        conn,
        new.case_id,
        {"recipient": new.recipient, "subject": new.subject, "body": new.body},
        sealed_context(new.notification_id),
    )
    status = await conn.execute(
        """
        INSERT INTO notifications (notification_id, case_id, channel, recipient, language, template,
                                   template_version, template_source, subject, body, sealed, test_delivery,
                                   citizen_id, mandatory, status, traceparent, tracestate)
        VALUES ($1, $2, $3, '', $4, $5, $6, $7, '', '', $8, $9, $10, $11, 'created', $12, $13)
        ON CONFLICT (notification_id) DO NOTHING
        """,
        new.notification_id,
        new.case_id,
        new.channel,
        new.language,
        new.template,
        new.template_version,
        new.template_source,
        sealed,
        new.test_delivery,
        new.citizen_id,
        new.mandatory,
        new.traceparent,
        new.tracestate,
    )
    if status == "INSERT 0 1":
        await add_history(conn, new.notification_id, DeliveryStatus.CREATED, None)
        return True
    return False


async def add_history(
    conn: asyncpg.Connection, notification_id: str, status: DeliveryStatus, detail: str | None
) -> None:
    await conn.execute(
        "INSERT INTO notification_status_history (notification_id, status, detail) VALUES ($1, $2, $3)",
        notification_id,
        status.value,
        detail,
    )


async def claim_due(conn: asyncpg.Connection, limit: int) -> list[Pending]:
    """Move due notifications to 'sending' and return them in the order they were requested;
    SKIP LOCKED lets dispatchers share."""
    rows = await conn.fetch(
        """
        WITH claimed AS (
            UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = now()
            WHERE notification_id IN (
                SELECT notification_id FROM notifications
                WHERE status IN ('created', 'temporary-failure') AND next_attempt_at <= now()
                ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING notification_id, case_id, channel, recipient, template, subject, body, sealed,
                      language, test_delivery, attempts, traceparent, tracestate, created_at)
        SELECT notification_id, case_id, channel, recipient, template, subject, body, sealed, language,
               test_delivery, attempts, traceparent, tracestate
        FROM claimed ORDER BY created_at, notification_id
        """,
        limit,
    )
    for row in rows:
        await add_history(conn, row["notification_id"], DeliveryStatus.SENDING, None)
    items = await opened(
        conn,
        rows,
        context=lambda row: sealed_context(row["notification_id"]),
        fields=("recipient", "subject", "body"),
    )
    return [Pending(**item) for item in items]


async def requeue_stale_sending(conn: asyncpg.Connection, older_than_s: float) -> int:
    """A dispatcher that died mid-send leaves rows in 'sending'; retry them (at-least-once)."""
    status = await conn.execute(
        "UPDATE notifications SET status = 'temporary-failure', updated_at = now() "
        "WHERE status = 'sending' AND updated_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return int(status.split()[-1])


async def finish(
    conn: asyncpg.Connection,
    notification_id: str,
    status: DeliveryStatus,
    *,
    detail: str | None,
    retry_in_s: float | None = None,
) -> None:
    # The cast matters: from "coalesce($4, 0)" PostgreSQL would infer an integer, turning 0.5 s into 0.
    await conn.execute(
        """
        UPDATE notifications SET status = $2, last_error = $3, updated_at = now(),
               next_attempt_at = now() + make_interval(secs => coalesce($4::float8, 0))
        WHERE notification_id = $1
        """,
        notification_id,
        status.value,
        detail,
        retry_in_s,
    )
    await add_history(conn, notification_id, status, detail)


async def status_history(conn: asyncpg.Connection, notification_id: str) -> list[tuple[str, str | None]]:
    """(status, detail) in order: what `hub` commands and tests show of a notification's life."""
    rows = await conn.fetch(
        "SELECT status, detail FROM notification_status_history WHERE notification_id = $1 ORDER BY id",
        notification_id,
    )
    return [(row["status"], row["detail"]) for row in rows]
