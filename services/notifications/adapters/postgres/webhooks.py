"""SQL of partner webhook endpoints: where a partner without Kafka receives its deliveries."""

from __future__ import annotations

import asyncpg

from hub.runtime.topics import delivery_topic
from services.notifications.domain import WebhookEndpoint, check_webhook

_COLUMNS = "partner_id, topic, url, secret, updated_at"


def _endpoint(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(
        row["partner_id"], row["topic"], row["url"], row["secret"].encode("utf-8"), row["updated_at"]
    )


class PostgresWebhooks:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def put(self, partner_id: str, url: str, secret: str) -> None:
        check_webhook(url, secret)
        await self._conn.execute(
            """
            INSERT INTO webhooks (partner_id, topic, url, secret) VALUES ($1, $2, $3, $4)
            ON CONFLICT (partner_id) DO UPDATE
                SET url = excluded.url, secret = excluded.secret, updated_at = now()
            """,
            partner_id,
            delivery_topic(partner_id),
            url,
            secret,
        )

    async def all(self) -> list[WebhookEndpoint]:
        rows = await self._conn.fetch(f"SELECT {_COLUMNS} FROM webhooks ORDER BY partner_id")
        return [_endpoint(row) for row in rows]

    async def for_topic(self, topic: str) -> WebhookEndpoint | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM webhooks WHERE topic = $1", topic)
        return None if row is None else _endpoint(row)

    async def of(self, partner_id: str) -> WebhookEndpoint | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM webhooks WHERE partner_id = $1", partner_id)
        return None if row is None else _endpoint(row)

    async def topics(self) -> set[str]:
        return {row["topic"] for row in await self._conn.fetch("SELECT topic FROM webhooks")}
