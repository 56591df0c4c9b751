"""The four stores of notifications on a ``MemoryStore``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from contracts import Channel, DeliveryStatus
from hub.runtime.topics import delivery_topic
from services.notifications.adapters.memory.store import DUE, UNFINISHED, InboxRow, MemoryStore, NoticeRow
from services.notifications.domain import (
    ERASED_REASON,
    UNREADABLE_TEXT,
    InboxMessage,
    NewInboxMessage,
    NewNotification,
    Notice,
    Outcome,
    Pending,
    Preference,
    WebhookEndpoint,
    check_webhook,
)


class MemoryNotifications:
    def __init__(self, store: MemoryStore, unit: int) -> None:
        self._store, self._unit = store, unit
        self._started = store.clock()

    def _readable(self, row: NoticeRow) -> dict[str, str | None]:
        if row.new.case_id in self._store.erased_cases:
            text = UNREADABLE_TEXT[ERASED_REASON]
            return {"recipient": text, "subject": text, "body": text, "unreadable": ERASED_REASON}
        return {"recipient": row.new.recipient, "subject": row.new.subject, "body": row.new.body}

    def _add_history(self, notification_id: str, status: DeliveryStatus, detail: str | None) -> None:
        self._store.state.history.append((notification_id, status.value, detail))

    async def add(self, new: NewNotification) -> bool:
        return new.notification_id in await self.add_all([new])

    async def add_all(self, news: Sequence[NewNotification]) -> set[str]:
        notices, added = self._store.state.notices, set()
        for new in news:
            if new.notification_id in notices:
                continue
            notices[new.notification_id] = NoticeRow(
                new, (self._started, self._unit), next_attempt_at=self._started, updated_at=self._started
            )
            self._add_history(new.notification_id, DeliveryStatus.CREATED, None)
            added.add(new.notification_id)
        if added:
            for wake in list(self._store._due_listeners):
                wake()
        return added

    async def claim_due(self, limit: int) -> list[Pending]:
        now = self._store.clock()
        in_order = sorted(
            self._store.state.notices.values(), key=lambda r: (r.created, r.new.notification_id)
        )
        waiting: set[tuple[str, str]] = set()  # (case, channel) with an earlier notice sending or retrying
        claimed: list[NoticeRow] = []
        for row in in_order:
            if len(claimed) == limit:
                break
            if row.status not in UNFINISHED:
                continue
            key = (row.new.case_id, row.new.channel)
            if row.status not in DUE or row.next_attempt_at > now:
                waiting.add(key)
            elif key not in waiting:
                claimed.append(row)
        for row in claimed:
            row.status, row.attempts, row.updated_at = DeliveryStatus.SENDING, row.attempts + 1, now
            self._add_history(row.new.notification_id, DeliveryStatus.SENDING, None)
        return [self._pending(row) for row in claimed]

    async def release(self, notification_ids: Sequence[str], *, reason: str) -> None:
        now = self._store.clock()
        for notification_id in notification_ids:
            row = self._store.state.notices.get(notification_id)
            if row is None or row.status is not DeliveryStatus.SENDING:
                continue
            # Tried before this claim: back to waiting for its retry.
            row.status = DeliveryStatus.TEMPORARY_FAILURE if row.attempts > 1 else DeliveryStatus.CREATED
            row.attempts, row.updated_at = row.attempts - 1, now
            self._add_history(notification_id, row.status, reason)

    def _pending(self, row: NoticeRow) -> Pending:
        new = row.new
        fields = self._readable(row)
        return Pending(
            notification_id=new.notification_id,
            case_id=new.case_id,
            channel=new.channel,
            recipient=fields["recipient"] or "",
            template=new.template,
            subject=fields["subject"] or "",
            body=fields["body"] or "",
            language=new.language,
            test_delivery=new.test_delivery,
            attempts=row.attempts,
            traceparent=new.traceparent,
            tracestate=new.tracestate,
            unreadable=fields.get("unreadable"),
        )

    async def requeue_stale_sending(self, older_than_s: float) -> int:
        now = self._store.clock()
        stale = [
            row
            for row in self._store.state.notices.values()
            if row.status is DeliveryStatus.SENDING and row.updated_at < now - older_than_s
        ]
        for row in stale:
            row.status, row.updated_at = DeliveryStatus.TEMPORARY_FAILURE, now
        return len(stale)

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
        now = self._store.clock()
        for outcome in outcomes:
            row = self._store.state.notices.get(outcome.notification_id)
            if row is not None:
                row.status, row.last_error, row.updated_at = outcome.status, outcome.detail, now
                row.next_attempt_at = now + (outcome.retry_in_s or 0.0)
            self._add_history(outcome.notification_id, outcome.status, outcome.detail)

    async def history(self, notification_id: str) -> list[tuple[str, str | None]]:
        return [
            (status, detail) for nid, status, detail in self._store.state.history if nid == notification_id
        ]

    async def of_case(self, case_id: str) -> list[Notice]:
        rows = sorted(
            (r for r in self._store.state.notices.values() if r.new.case_id == case_id),
            key=lambda r: r.new.notification_id,
        )
        notices = []
        for row in rows:
            fields = self._readable(row)
            notices.append(
                Notice(
                    notification_id=row.new.notification_id,
                    case_id=row.new.case_id,
                    channel=row.new.channel,
                    recipient=fields["recipient"] or "",
                    template=row.new.template,
                    subject=fields["subject"] or "",
                    body=fields["body"] or "",
                    status=row.status,
                    attempts=row.attempts,
                    last_error=row.last_error,
                    citizen_id=row.new.citizen_id,
                    test_delivery=row.new.test_delivery,
                    unreadable=fields.get("unreadable"),
                )
            )
        return notices


class MemoryPreferences:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def preference_of(self, citizen_id: str) -> Preference | None:
        return self._store.state.preferences.get(citizen_id)

    async def prefer_channel(self, citizen_id: str, channel: Channel) -> None:
        chosen = self._store.state.preferences.get(citizen_id, Preference())
        self._store.state.preferences[citizen_id] = replace(chosen, channel=channel)

    async def set_opted_out(self, citizen_id: str, opted_out: bool) -> None:
        chosen = self._store.state.preferences.get(citizen_id, Preference())
        self._store.state.preferences[citizen_id] = replace(chosen, opted_out=opted_out)


class MemoryInbox:
    def __init__(self, store: MemoryStore, unit: int) -> None:
        self._store, self._unit = store, unit
        self._started = store.clock()

    async def store(self, message: NewInboxMessage) -> None:
        await self.store_all([message])

    async def store_all(self, messages: Sequence[NewInboxMessage]) -> None:
        for message in messages:
            self._store.state.inbox.setdefault(
                message.notification_id, InboxRow(message, (self._started, self._unit))
            )

    async def of(self, citizen_id: str) -> list[InboxMessage]:
        rows = sorted(
            (r for r in self._store.state.inbox.values() if r.message.citizen_id == citizen_id),
            key=lambda r: r.message.notification_id,
        )
        rows.sort(key=lambda r: r.delivered, reverse=True)  # stable: newest first, then by id
        return [self._message(row) for row in rows]

    def _message(self, row: InboxRow) -> InboxMessage:
        message = row.message
        erased = message.case_id in self._store.erased_cases
        text = UNREADABLE_TEXT[ERASED_REASON]
        return InboxMessage(
            notification_id=message.notification_id,
            case_id=message.case_id,
            template=message.template,
            language=message.language,
            subject=text if erased else message.subject,
            body=text if erased else message.body,
            delivered_at=self._store.when(row.delivered),
            read_at=None,
            unreadable=ERASED_REASON if erased else None,
        )


class MemoryWebhooks:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def put(self, partner_id: str, url: str, secret: str) -> None:
        check_webhook(url, secret)
        now = dt.datetime.fromtimestamp(self._store.clock(), dt.UTC)
        self._store.state.webhooks[partner_id] = WebhookEndpoint(
            partner_id, delivery_topic(partner_id), url, secret.encode("utf-8"), now
        )

    async def all(self) -> list[WebhookEndpoint]:
        return [self._store.state.webhooks[p] for p in sorted(self._store.state.webhooks)]

    async def for_topic(self, topic: str) -> WebhookEndpoint | None:
        return next((w for w in self._store.state.webhooks.values() if w.topic == topic), None)

    async def of(self, partner_id: str) -> WebhookEndpoint | None:
        return self._store.state.webhooks.get(partner_id)

    async def topics(self) -> set[str]:
        return {w.topic for w in self._store.state.webhooks.values()}
