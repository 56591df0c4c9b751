"""SQL of the notifications lifecycle: queue, claim, finish, and the status history."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from contracts import DeliveryStatus


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


async def insert_notification(conn: asyncpg.Connection, new: NewNotification) -> bool:
    """Queue as 'created'; False if this notification id exists (a redelivered request)."""
    status = await conn.execute(
        """
        INSERT INTO notifications (notification_id, case_id, channel, recipient, language, template,
                                   template_version, template_source, subject, body, test_delivery,
                                   citizen_id, mandatory, status, traceparent, tracestate)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'created', $14, $15)
        ON CONFLICT (notification_id) DO NOTHING
        """,
        new.notification_id,
        new.case_id,
        new.channel,
        new.recipient,
        new.language,
        new.template,
        new.template_version,
        new.template_source,
        new.subject,
        new.body,
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
    """Move due notifications to 'sending' and return them; SKIP LOCKED lets dispatchers share."""
    rows = await conn.fetch(
        """
        UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = now()
        WHERE notification_id IN (
            SELECT notification_id FROM notifications
            WHERE status IN ('created', 'temporary-failure') AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING notification_id, case_id, channel, recipient, template, subject, body, language,
                  test_delivery, attempts, traceparent, tracestate
        """,
        limit,
    )
    for row in rows:
        await add_history(conn, row["notification_id"], DeliveryStatus.SENDING, None)
    return [Pending(**dict(row)) for row in rows]


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
