"""SQL of the notices and their status history: queue, claim, finish."""

from __future__ import annotations

import asyncpg

from contracts import DeliveryStatus
from hub.vault.crypto import MasterKey
from services.notifications.adapters.postgres.sealed import notice_context, opened, required, seal_for_case
from services.notifications.domain import NewNotification, Notice, Pending

_SEALED_FIELDS = ("recipient", "subject", "body")


class PostgresNotifications:
    def __init__(self, conn: asyncpg.Connection, master: MasterKey | None) -> None:
        self._conn, self._master = conn, master

    async def add(self, new: NewNotification) -> bool:
        sealed = await seal_for_case(
            self._conn,
            required(self._master),
            new.case_id,
            {"recipient": new.recipient, "subject": new.subject, "body": new.body},
            notice_context(new.notification_id),
        )
        status = await self._conn.execute(
            """
            INSERT INTO notifications (notification_id, case_id, channel, recipient, language, template,
                                       template_version, template_source, subject, body, sealed,
                                       test_delivery, citizen_id, mandatory, status, traceparent, tracestate)
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
            await self._add_history(new.notification_id, DeliveryStatus.CREATED, None)
            return True
        return False

    async def _add_history(self, notification_id: str, status: DeliveryStatus, detail: str | None) -> None:
        await self._conn.execute(
            "INSERT INTO notification_status_history (notification_id, status, detail) VALUES ($1, $2, $3)",
            notification_id,
            status.value,
            detail,
        )

    async def claim_due(self, limit: int) -> list[Pending]:
        # SKIP LOCKED lets dispatchers share; a notice locked by one is not offered to another.
        rows = await self._conn.fetch(
            """
            WITH claimed AS (
                UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = now()
                WHERE notification_id IN (
                    SELECT notification_id FROM notifications
                    WHERE status IN ('created', 'temporary-failure') AND next_attempt_at <= now()
                    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                RETURNING notification_id, case_id, channel, template, sealed, language, test_delivery,
                          attempts, traceparent, tracestate, created_at)
            SELECT notification_id, case_id, channel, template, sealed, language, test_delivery, attempts,
                   traceparent, tracestate
            FROM claimed ORDER BY created_at, notification_id
            """,
            limit,
        )
        for row in rows:
            await self._add_history(row["notification_id"], DeliveryStatus.SENDING, None)
        items = await opened(
            self._conn,
            required(self._master),
            rows,
            context=lambda row: notice_context(row["notification_id"]),
            fields=_SEALED_FIELDS,
        )
        return [Pending(**item) for item in items]

    async def requeue_stale_sending(self, older_than_s: float) -> int:
        status = await self._conn.execute(
            "UPDATE notifications SET status = 'temporary-failure', updated_at = now() "
            "WHERE status = 'sending' AND updated_at < now() - make_interval(secs => $1)",
            older_than_s,
        )
        return int(status.split()[-1])

    async def finish(
        self,
        notification_id: str,
        status: DeliveryStatus,
        *,
        detail: str | None,
        retry_in_s: float | None = None,
    ) -> None:
        # The cast matters: from "coalesce($4, 0)" PostgreSQL would infer an integer, turning 0.5 s into 0.
        await self._conn.execute(
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
        await self._add_history(notification_id, status, detail)

    async def history(self, notification_id: str) -> list[tuple[str, str | None]]:
        rows = await self._conn.fetch(
            "SELECT status, detail FROM notification_status_history WHERE notification_id = $1 ORDER BY id",
            notification_id,
        )
        return [(row["status"], row["detail"]) for row in rows]

    async def of_case(self, case_id: str) -> list[Notice]:
        rows = await self._conn.fetch(
            """
            SELECT notification_id, case_id, channel, template, sealed, status, attempts, last_error,
                   citizen_id, test_delivery
            FROM notifications WHERE case_id = $1 ORDER BY notification_id
            """,
            case_id,
        )
        items = await opened(
            self._conn,
            required(self._master),
            rows,
            context=lambda row: notice_context(row["notification_id"]),
            fields=_SEALED_FIELDS,
        )
        return [Notice(**(item | {"status": DeliveryStatus(item["status"])})) for item in items]
