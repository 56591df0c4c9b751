"""Idempotent consumer: remember (consumer, event) in the same transaction as the effect.

The key is ``ce_source`` + ``ce_id``: CloudEvents makes that pair unique, whereas
Kafka offsets change when an event is redelivered or re-published.
"""

from __future__ import annotations

from collections.abc import Sequence

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


async def claim_many(conn: asyncpg.Connection, consumer: str, envelopes: Sequence[Envelope]) -> set[str]:
    """The event keys this consumer sees for the first time, claimed with one statement.

    A key twice among ``envelopes`` is claimed once; which copy acts on it is the caller's
    choice (the first, in a batch).
    """
    if not envelopes:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO inbox (consumer, event_key, event_type)
        SELECT $1, event_key, event_type FROM unnest($2::text[], $3::text[]) AS e(event_key, event_type)
        ON CONFLICT DO NOTHING
        RETURNING event_key
        """,
        consumer,
        [event_key(envelope) for envelope in envelopes],
        [envelope.type for envelope in envelopes],
    )
    return {row["event_key"] for row in rows}


async def release_many(conn: asyncpg.Connection, consumer: str, envelopes: Sequence[Envelope]) -> None:
    """Undo claims made in this transaction for events that were not acted on after all."""
    if envelopes:
        await conn.execute(
            "DELETE FROM inbox WHERE consumer = $1 AND event_key = ANY($2::text[])",
            consumer,
            [event_key(envelope) for envelope in envelopes],
        )
