"""Idempotent consumer: remember (consumer, event) in the same transaction as the effect.

The key is ``ce_source`` + ``ce_id``: CloudEvents makes that pair unique, whereas
Kafka offsets change when an event is redelivered or re-published.
"""

from __future__ import annotations

import asyncpg

from contracts import Envelope


def event_key(envelope: Envelope) -> str:
    return f"{envelope.source} {envelope.id}"


async def claim(conn: asyncpg.Connection, consumer: str, envelope: Envelope) -> bool:
    """True if this consumer sees the event for the first time; must run in the effect's transaction."""
    status = await conn.execute(
        "INSERT INTO inbox (consumer, event_key, event_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        consumer,
        event_key(envelope),
        envelope.type,
    )
    return bool(status == "INSERT 0 1")
