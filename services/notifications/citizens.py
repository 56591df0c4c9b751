"""SQL of what belongs to a citizen: channel preference, opt-out, and the in-app inbox.

An inbox message's subject and body are sealed under the case's person's data key, like
the notification they copy (``repository.py``); an erased person's messages read as erased.
A preference holds no data key's data, only a choice keyed by citizen id: erasure deletes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import asdict, dataclass

import asyncpg

from contracts import Channel
from services.notifications.domain import Preference
from services.notifications.repository import ERASED_REASON, opened, seal_for_case


@dataclass(frozen=True)
class InboxMessage:
    notification_id: str
    case_id: str
    template: str
    language: str
    subject: str
    body: str
    delivered_at: dt.datetime
    read_at: dt.datetime | None
    unreadable: str | None = None  # "erased" (the person's key is destroyed) or "tampered"

    @property
    def erased(self) -> bool:
        return self.unreadable == ERASED_REASON

    def as_json(self) -> dict[str, object]:
        row = asdict(self)
        row["delivered_at"] = self.delivered_at.isoformat()
        row["read_at"] = self.read_at.isoformat() if self.read_at else None
        return row


async def preference_of(conn: asyncpg.Connection, citizen_id: str) -> Preference | None:
    row = await conn.fetchrow(
        "SELECT channel, opted_out FROM citizen_preferences WHERE citizen_id = $1", citizen_id
    )
    if row is None:
        return None
    return Preference(Channel(row["channel"]) if row["channel"] else None, row["opted_out"])


async def prefer_channel(conn: asyncpg.Connection, citizen_id: str, channel: Channel) -> None:
    await conn.execute(
        """
        INSERT INTO citizen_preferences (citizen_id, channel) VALUES ($1, $2)
        ON CONFLICT (citizen_id) DO UPDATE SET channel = excluded.channel, updated_at = now()
        """,
        citizen_id,
        channel.value,
    )


async def set_opted_out(conn: asyncpg.Connection, citizen_id: str, opted_out: bool) -> None:
    await conn.execute(
        """
        INSERT INTO citizen_preferences (citizen_id, opted_out) VALUES ($1, $2)
        ON CONFLICT (citizen_id) DO UPDATE SET opted_out = excluded.opted_out, updated_at = now()
        """,
        citizen_id,
        opted_out,
    )


async def forget_preferences(
    conn: asyncpg.Connection, citizen_ids: Collection[str], *, schema: str = "notifications"
) -> int:
    """``hub person erase``: the person's channel and opt-out go (keyed by citizen id, in
    clear, so no data key reaches them). On any connection: the table is named with its
    schema. Returns how many rows went; 0 where notifications has no tables yet."""
    if not citizen_ids or not await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f'"{schema}".citizen_preferences'
    ):
        return 0
    status = await conn.execute(
        f'DELETE FROM "{schema}".citizen_preferences WHERE citizen_id = ANY($1::text[])', list(citizen_ids)
    )
    return int(status.split()[-1])


async def store_inbox_message(
    conn: asyncpg.Connection,
    *,
    notification_id: str,
    citizen_id: str,
    case_id: str,
    template: str,
    language: str,
    subject: str,
    body: str,
) -> None:
    sealed = await seal_for_case(
        conn, case_id, {"subject": subject, "body": body}, inbox_context(notification_id)
    )
    # A retry after a crash between this insert and the status update must not duplicate it.
    await conn.execute(
        """
        INSERT INTO inbox_messages (notification_id, citizen_id, case_id, template, language, subject, body,
                                    sealed)
        VALUES ($1, $2, $3, $4, $5, '', '', $6) ON CONFLICT (notification_id) DO NOTHING
        """,
        notification_id,
        citizen_id,
        case_id,
        template,
        language,
        sealed,
    )


def inbox_context(notification_id: str) -> str:
    return f"notifications.inbox_messages.sealed:{notification_id}"


async def inbox_of(conn: asyncpg.Connection, citizen_id: str) -> list[InboxMessage]:
    """Newest first, as an inbox shows them."""
    rows = await conn.fetch(
        """
        SELECT notification_id, case_id, template, language, subject, body, sealed, delivered_at, read_at
        FROM inbox_messages WHERE citizen_id = $1 ORDER BY delivered_at DESC, notification_id
        """,
        citizen_id,
    )
    items = await opened(
        conn,
        rows,
        context=lambda row: inbox_context(row["notification_id"]),
        fields=("subject", "body"),
    )
    return [InboxMessage(**item) for item in items]
