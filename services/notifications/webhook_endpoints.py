"""SQL of partner webhook endpoints: where a partner without Kafka receives its deliveries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import asyncpg

from hub.runtime.topics import delivery_topic

MIN_SECRET_LENGTH = 16  # characters; HMAC-SHA256 keys shorter than this are guessable


@dataclass(frozen=True)
class WebhookEndpoint:
    partner_id: str
    topic: str
    url: str
    secret: bytes = field(repr=False)  # never in logs or tracebacks
    updated_at: dt.datetime | None = None


def _endpoint(row: asyncpg.Record) -> WebhookEndpoint:
    return WebhookEndpoint(
        row["partner_id"], row["topic"], row["url"], row["secret"].encode("utf-8"), row["updated_at"]
    )


async def put_webhook(conn: asyncpg.Connection, partner_id: str, url: str, secret: str) -> None:
    """Add, or replace the URL and secret of, a partner's webhook."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the webhook secret must have at least {MIN_SECRET_LENGTH} characters")
    if not url.startswith(("https://", "http://")):
        raise ValueError("the webhook URL must start with https:// (or http:// for local tests)")
    await conn.execute(
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


async def all_webhooks(conn: asyncpg.Connection) -> list[WebhookEndpoint]:
    rows = await conn.fetch(
        "SELECT partner_id, topic, url, secret, updated_at FROM webhooks ORDER BY partner_id"
    )
    return [_endpoint(row) for row in rows]


async def webhook_for_topic(conn: asyncpg.Connection, topic: str) -> WebhookEndpoint | None:
    row = await conn.fetchrow(
        "SELECT partner_id, topic, url, secret, updated_at FROM webhooks WHERE topic = $1", topic
    )
    return None if row is None else _endpoint(row)


async def webhook_of(conn: asyncpg.Connection, partner_id: str) -> WebhookEndpoint | None:
    row = await conn.fetchrow(
        "SELECT partner_id, topic, url, secret, updated_at FROM webhooks WHERE partner_id = $1", partner_id
    )
    return None if row is None else _endpoint(row)


async def webhook_topics(conn: asyncpg.Connection) -> set[str]:
    return {row["topic"] for row in await conn.fetch("SELECT topic FROM webhooks")}
