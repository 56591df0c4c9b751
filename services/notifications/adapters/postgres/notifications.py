"""SQL of the notices and their status history: queue, claim, finish."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from contracts import DeliveryStatus
from hub.runtime.db import plan_afresh_in_this_transaction
from hub.vault.crypto import MasterKey
from services.notifications.adapters.postgres.sealed import (
    notice_context,
    opened,
    required,
    seal_each_for_case,
)
from services.notifications.domain import NewNotification, Notice, Outcome, Pending

_SEALED_FIELDS = ("recipient", "subject", "body")
_UNFINISHED = "('created', 'sending', 'temporary-failure')"


class PostgresNotifications:
    def __init__(self, conn: asyncpg.Connection, master: MasterKey | None) -> None:
        self._conn, self._master = conn, master

    async def add(self, new: NewNotification) -> bool:
        return new.notification_id in await self.add_all([new])

    async def add_all(self, news: Sequence[NewNotification]) -> set[str]:
        if not news:
            return set()
        sealed = await seal_each_for_case(
            self._conn,
            required(self._master),
            [
                (
                    new.case_id,
                    {"recipient": new.recipient, "subject": new.subject, "body": new.body},
                    notice_context(new.notification_id),
                )
                for new in news
            ],
        )
        # One statement per table, whatever the number of notices (a notice and its inbox copy).
        rows = await self._conn.fetch(
            """
            INSERT INTO notifications (notification_id, case_id, channel, recipient, language, template,
                                       template_version, template_source, subject, body, sealed,
                                       test_delivery, citizen_id, mandatory, status, traceparent, tracestate)
            SELECT notification_id, case_id, channel, '', language, template, template_version,
                   template_source, '', '', sealed, test_delivery, citizen_id, mandatory, 'created',
                   traceparent, tracestate
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],
                        $7::text[], $8::bytea[], $9::boolean[], $10::text[], $11::boolean[], $12::text[],
                        $13::text[])
                AS new (notification_id, case_id, channel, language, template, template_version,
                        template_source, sealed, test_delivery, citizen_id, mandatory, traceparent,
                        tracestate)
            ON CONFLICT (notification_id) DO NOTHING
            RETURNING notification_id
            """,
            [new.notification_id for new in news],
            [new.case_id for new in news],
            [new.channel for new in news],
            [new.language for new in news],
            [new.template for new in news],
            [new.template_version for new in news],
            [new.template_source for new in news],
            sealed,
            [new.test_delivery for new in news],
            [new.citizen_id for new in news],
            [new.mandatory for new in news],
            [new.traceparent for new in news],
            [new.tracestate for new in news],
        )
        added = [row["notification_id"] for row in rows]
        await self._add_history(
            [(notification_id, DeliveryStatus.CREATED, None) for notification_id in added]
        )
        return set(added)

    async def _add_history(self, entries: Sequence[tuple[str, DeliveryStatus, str | None]]) -> None:
        if not entries:
            return
        await self._conn.execute(
            """
            INSERT INTO notification_status_history (notification_id, status, detail)
            SELECT notification_id, status, detail
            FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
                AS entry (notification_id, status, detail, position)
            ORDER BY position
            """,
            [notification_id for notification_id, _, _ in entries],
            [status.value for _, status, _ in entries],
            [detail for _, _, detail in entries],
        )

    async def claim_due(self, limit: int) -> list[Pending]:
        # Claims take turns (the lock is the transaction's): two dispatchers claiming at once
        # could each take a different notice of one case, and send them in either order.
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('notifications.claim:' || current_schema(), 0))"
        )
        await plan_afresh_in_this_transaction(self._conn)
        # Oldest request first, so that a limit cuts a case's due notices after a prefix;
        # a notice waits while an earlier one of its case and channel is being sent or retried.
        rows = await self._conn.fetch(
            f"""
            WITH claimed AS (
                UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = now()
                WHERE notification_id IN (
                    SELECT notification_id FROM notifications AS due
                    WHERE status IN ('created', 'temporary-failure') AND next_attempt_at <= now()
                      AND NOT EXISTS (
                          SELECT FROM notifications AS earlier
                          WHERE earlier.case_id = due.case_id AND earlier.channel = due.channel
                            AND earlier.status IN {_UNFINISHED}
                            AND (earlier.created_at, earlier.notification_id)
                                < (due.created_at, due.notification_id)
                            AND (earlier.status = 'sending' OR earlier.next_attempt_at > now()))
                    ORDER BY created_at, notification_id LIMIT $1 FOR UPDATE)
                RETURNING notification_id, case_id, channel, template, sealed, language, test_delivery,
                          attempts, traceparent, tracestate, created_at)
            SELECT notification_id, case_id, channel, template, sealed, language, test_delivery, attempts,
                   traceparent, tracestate
            FROM claimed ORDER BY created_at, notification_id
            """,
            limit,
        )
        await self._add_history([(row["notification_id"], DeliveryStatus.SENDING, None) for row in rows])
        items = await opened(
            self._conn,
            required(self._master),
            rows,
            context=lambda row: notice_context(row["notification_id"]),
            fields=_SEALED_FIELDS,
        )
        return [Pending(**item) for item in items]

    async def release(self, notification_ids: Sequence[str], *, reason: str) -> None:
        # attempts > 1 after the claim: it was tried before, so it goes back to waiting for a retry.
        rows = await self._conn.fetch(
            """
            UPDATE notifications
            SET status = CASE WHEN attempts > 1 THEN 'temporary-failure' ELSE 'created' END,
                attempts = attempts - 1, updated_at = now()
            WHERE notification_id = ANY($1::text[]) AND status = 'sending'
            RETURNING notification_id, status
            """,
            list(notification_ids),
        )
        await self._add_history(
            [(row["notification_id"], DeliveryStatus(row["status"]), reason) for row in rows]
        )

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
        await self.finish_all([Outcome(notification_id, status, detail, retry_in_s)])

    async def finish_all(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        await self._conn.execute(
            """
            UPDATE notifications AS notice
            SET status = outcome.status, last_error = outcome.detail, updated_at = now(),
                next_attempt_at = now() + make_interval(secs => coalesce(outcome.retry_in_s, 0))
            FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[])
                AS outcome (notification_id, status, detail, retry_in_s)
            WHERE notice.notification_id = outcome.notification_id
            """,
            [outcome.notification_id for outcome in outcomes],
            [outcome.status.value for outcome in outcomes],
            [outcome.detail for outcome in outcomes],
            [outcome.retry_in_s for outcome in outcomes],
        )
        await self._add_history([(o.notification_id, o.status, o.detail) for o in outcomes])

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
