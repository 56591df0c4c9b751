"""SQL of what belongs to a citizen: channel preference and opt-out, and the in-app inbox.

A preference holds no personal data sealed under a key, only a choice keyed by citizen id
in clear: erasure deletes the row. An inbox message's subject and body are sealed under
the case's person's key, like the notice they copy.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import asyncpg

from contracts import Channel
from hub.vault.crypto import MasterKey
from services.notifications.adapters.postgres.sealed import (
    inbox_context,
    opened,
    required,
    seal_each_for_case,
)
from services.notifications.domain import InboxMessage, NewInboxMessage, Preference


class PostgresPreferences:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def preference_of(self, citizen_id: str) -> Preference | None:
        row = await self._conn.fetchrow(
            "SELECT channel, opted_out FROM citizen_preferences WHERE citizen_id = $1", citizen_id
        )
        if row is None:
            return None
        return Preference(Channel(row["channel"]) if row["channel"] else None, row["opted_out"])

    async def prefer_channel(self, citizen_id: str, channel: Channel) -> None:
        await self._conn.execute(
            """
            INSERT INTO citizen_preferences (citizen_id, channel) VALUES ($1, $2)
            ON CONFLICT (citizen_id) DO UPDATE SET channel = excluded.channel, updated_at = now()
            """,
            citizen_id,
            channel.value,
        )

    async def set_opted_out(self, citizen_id: str, opted_out: bool) -> None:
        await self._conn.execute(
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
    """The citizens' channel and opt-out deleted, on any connection (the table is named with
    its schema); how many rows went. 0 where notifications has no tables yet."""
    if not citizen_ids or not await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f'"{schema}".citizen_preferences'
    ):
        return 0
    status = await conn.execute(
        f'DELETE FROM "{schema}".citizen_preferences WHERE citizen_id = ANY($1::text[])', list(citizen_ids)
    )
    return int(status.split()[-1])


class PostgresInbox:
    def __init__(self, conn: asyncpg.Connection, master: MasterKey | None) -> None:
        self._conn, self._master = conn, master

    async def store(self, message: NewInboxMessage) -> None:
        await self.store_all([message])

    async def store_all(self, messages: Sequence[NewInboxMessage]) -> None:
        if not messages:
            return
        sealed = await seal_each_for_case(
            self._conn,
            required(self._master),
            [
                (m.case_id, {"subject": m.subject, "body": m.body}, inbox_context(m.notification_id))
                for m in messages
            ],
        )
        await self._conn.execute(
            """
            INSERT INTO inbox_messages (notification_id, citizen_id, case_id, template, language, subject,
                                        body, sealed)
            SELECT notification_id, citizen_id, case_id, template, language, '', '', sealed
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
                AS message (notification_id, citizen_id, case_id, template, language, sealed)
            ON CONFLICT (notification_id) DO NOTHING
            """,
            [m.notification_id for m in messages],
            [m.citizen_id for m in messages],
            [m.case_id for m in messages],
            [m.template for m in messages],
            [m.language for m in messages],
            sealed,
        )

    async def of(self, citizen_id: str) -> list[InboxMessage]:
        rows = await self._conn.fetch(
            """
            SELECT notification_id, case_id, template, language, sealed, delivered_at, read_at
            FROM inbox_messages WHERE citizen_id = $1 ORDER BY delivered_at DESC, notification_id
            """,
            citizen_id,
        )
        items = await opened(
            self._conn,
            required(self._master),
            rows,
            context=lambda row: inbox_context(row["notification_id"]),
            fields=("subject", "body"),
        )
        return [InboxMessage(**item) for item in items]
