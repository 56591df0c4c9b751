"""Dead-lettering: the failed record goes to ``<topic>-dlt`` with text headers saying why.

The dead letter is written through the outbox together with a ``dead_letters`` row, so
recording it and publishing it cannot diverge, and the original offset is committed only
after both are durable. The row also keeps the original key, headers and value, for
``hub dlq show`` and ``hub dlq redrive`` (hub/cli/dead_letters.py); a record too large for that is kept
and published as a reference (hub/runtime/deadletter_reference.py).

A route may add a ``RefusalHook``: it runs in that same transaction, so whatever it records
(the registry: an audit entry for a refused partner event) commits with the dead letter
or not at all. Only the dead-letter path pays for it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import ConsumerRecord

from hub.runtime import topics
from hub.runtime.deadletter_reference import HEADER_VALUE_BYTES, KeptRecord, keep, storable
from hub.runtime.settings import DEFAULT_MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

DLT_SUFFIX = "-dlt"
_MAX_MESSAGE = 1000

# Called with the dead-letter transaction's connection, the record and the reason; it
# decides itself whether the reason is one it records.
RefusalHook = Callable[[asyncpg.Connection, ConsumerRecord[bytes, bytes], BaseException], Awaitable[None]]


def dead_letter_topic(topic: str) -> str:
    """``<topic>-dlt``; every partner's own ingress topic shares ``hub.ingress-dlt``.

    One dead-letter topic for all partner ingress topics keeps the tools that watch it
    working, and no ``hub.ingress.<slug>-dlt`` exists for the registry's pattern to match.
    The original topic stays in the ``dlt-original-topic`` header, where a redrive goes.
    """
    if topics.is_partner_ingress(topic):
        return topics.INGRESS + DLT_SUFFIX
    return topic + DLT_SUFFIX


def dead_letter_headers(
    record: ConsumerRecord[bytes, bytes],
    consumer_group: str,
    error: BaseException,
    attempts: int,
    kept: KeptRecord | None = None,
) -> list[tuple[str, str]]:
    """Original headers (text) plus Spring-style ``dlt-*`` headers an operator can read;
    for a record kept as a reference, its cut headers and what says it is one."""
    kept = kept or keep(record, DEFAULT_MAX_MESSAGE_BYTES)
    return [
        *[(n, v) for n, v in kept.headers if not n.startswith("dlt-")],
        ("dlt-original-topic", record.topic),
        ("dlt-original-partition", str(record.partition)),
        ("dlt-original-offset", str(record.offset)),
        ("dlt-original-timestamp", str(record.timestamp)),
        ("dlt-original-consumer-group", consumer_group),
        ("dlt-exception-fqcn", f"{type(error).__module__}.{type(error).__qualname__}"),
        ("dlt-exception-message", storable(str(error)[:_MAX_MESSAGE])),
        ("dlt-time", dt.datetime.now(dt.UTC).isoformat()),
        ("dlt-attempts", str(attempts)),
        *kept.reference_headers(),
    ]


def text_header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    """The last value of header ``name`` as storable text, whatever its bytes.

    Unlike ``contracts.header_value`` it never raises: a record dead-lettered because a
    header is not UTF-8 must not fail again while its dead letter is written.
    """
    values = [value for key, value in record.headers if key == name]
    return storable(values[-1].decode("utf-8", errors="replace")) if values else None


class DeadLetterWriter:
    def __init__(self, pool: asyncpg.Pool, *, max_stored_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._pool = pool
        self._max_stored_bytes = max_stored_bytes

    async def write(
        self,
        record: ConsumerRecord[bytes, bytes],
        consumer_group: str,
        error: BaseException,
        *,
        attempts: int,
        on_refused: RefusalHook | None = None,
    ) -> None:
        """Record the dead letter in a transaction of its own."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self.write_in(conn, record, consumer_group, error, attempts=attempts, on_refused=on_refused)

    async def write_in(
        self,
        conn: asyncpg.Connection,
        record: ConsumerRecord[bytes, bytes],
        consumer_group: str,
        error: BaseException,
        *,
        attempts: int,
        on_refused: RefusalHook | None = None,
    ) -> None:
        """Record the dead letter in the transaction ``conn`` is in (a consumer's batch)."""
        kept = keep(record, self._max_stored_bytes)
        headers = dead_letter_headers(record, consumer_group, error, attempts, kept)
        topic = dead_letter_topic(record.topic)
        # A header of any size may arrive; what names the event in the row stays short.
        event_id = _short(text_header(record, "ce_id"))
        event_type = _short(text_header(record, "ce_type"))
        log.warning(
            "dead-lettering %s[%d]@%d to %s%s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            topic,
            f" as a reference ({kept.record_size} bytes)" if kept.truncated else "",
            type(error).__name__,
            str(error)[:200],
        )
        await conn.execute(
            """
            INSERT INTO dead_letters (consumer, topic, partition, kafka_offset, event_id, event_type,
                                      error_class, error_message, dead_letter_topic,
                                      kafka_key, headers, payload,
                                      original_size, original_sha256, truncated)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15)
            """,
            consumer_group,
            record.topic,
            record.partition,
            record.offset,
            event_id,
            event_type,
            type(error).__name__,
            storable(str(error)[:_MAX_MESSAGE]),
            topic,
            kept.key,
            json.dumps([list(h) for h in kept.headers]),
            kept.value,
            kept.original_size,
            kept.original_sha256,
            kept.truncated,
        )
        await conn.execute(
            """
            INSERT INTO outbox (id, topic, aggregatetype, aggregateid, type, headers, payload)
            VALUES ($1, $2, 'dead-letter', $3, $4, $5::jsonb, $6)
            """,
            uuid.uuid4(),
            topic,
            storable((kept.key or b"").decode("utf-8", errors="replace")),
            event_type or "unknown",
            json.dumps([list(h) for h in headers]),
            kept.value,
        )
        if on_refused is not None:
            await on_refused(conn, record, error)


def _short(text: str | None) -> str | None:
    return text[:HEADER_VALUE_BYTES] if text is not None else None
