"""The audit chain's head, anchored outside the database.

Every ``interval`` the registry publishes where its chain ends (``AuditHeadAnchored``) on
``hub.audit.heads``, through its outbox, so the relay signs it with the hub's key like any
event the registry publishes. ``hub audit verify`` reads the latest anchor it can prove
(the hub's signature) and checks the chain against it: a chain cut short and its head
moved back, which the database alone cannot reveal, no longer reaches the anchored entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import Envelope, EnvelopeError
from contracts.audit import AuditHeadAnchored
from contracts.catalog import parse_data
from contracts.errors import ContractError
from hub.runtime import topics
from hub.runtime.db import DATABASE_FAILURES
from hub.runtime.kafka import client_config
from hub.runtime.messages import Emitter
from hub.runtime.settings import HubSettings
from hub.security.signing import PublicKey, SignatureRefused

log = logging.getLogger(__name__)

# Every anchor has the same key: one partition holds them in order.
ANCHOR_KEY = "audit-head"
READ_TIMEOUT_S = 10.0


async def current_head(conn: asyncpg.Connection) -> tuple[int, str] | None:
    """(seq, seal) of the chain's last entry, or None before the first one."""
    row = await conn.fetchrow("SELECT seq, entry_hash FROM audit_head")
    if row is None or row["seq"] == 0:
        return None
    return int(row["seq"]), str(row["entry_hash"])


class HeadAnchor:
    """A registry worker: publishes the head whenever it moved since the last publication."""

    def __init__(
        self, pool: asyncpg.Pool, emitter: Callable[[asyncpg.Connection], Emitter], *, interval_s: float
    ) -> None:
        self._pool, self._emitter, self._interval_s = pool, emitter, interval_s
        self._published: tuple[int, str] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.anchor_once()
            except DATABASE_FAILURES as error:  # the database is away: the next round anchors
                log.warning("audit head not anchored this round: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def anchor_once(self) -> AuditHeadAnchored | None:
        """Publish the head if it moved; the anchor leaves with the outbox, once committed."""
        async with self._pool.acquire() as conn, conn.transaction():
            head = await current_head(conn)
            if head is None or head == self._published:
                return None
            anchor = AuditHeadAnchored(seq=head[0], entry_hash=head[1], anchored_at=dt.datetime.now(dt.UTC))
            await self._emitter(conn).emit(anchor, topic=topics.AUDIT_HEADS, business_process_id=ANCHOR_KEY)
        self._published = head
        return anchor


async def latest_anchor(settings: HubSettings, hub_key: PublicKey) -> AuditHeadAnchored | None:
    """The furthest anchor on ``hub.audit.heads`` that the hub's key signed; None if none.

    Records it cannot prove (unsigned, another key, not an anchor) are skipped: whoever can
    write the topic could otherwise plant an anchor, but not one signed with the hub's key.
    """
    consumer = AIOKafkaConsumer(
        **client_config(settings, client_id="hub-audit-verify"), enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    try:
        topic = topics.on_cluster(topics.AUDIT_HEADS, settings.topic_prefix)
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.topics()  # the first metadata request may not have named it yet
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return None
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        best: AuditHeadAnchored | None = None
        for partition in assigned:
            if ends[partition] == 0:
                continue
            # Anchors only grow: the last proven one of each partition is the furthest.
            await consumer.seek_to_beginning(partition)
            async with asyncio.timeout(READ_TIMEOUT_S):
                while await consumer.position(partition) < ends[partition]:
                    batch = await consumer.getmany(partition, timeout_ms=500)
                    for record in batch.get(partition, []):
                        anchor = _proven(record.headers, record.value or b"", hub_key)
                        if anchor is not None and (best is None or anchor.seq >= best.seq):
                            best = anchor
        return best
    finally:
        await consumer.stop()


def _proven(headers: list[tuple[str, bytes]], value: bytes, hub_key: PublicKey) -> AuditHeadAnchored | None:
    try:
        hub_key.verify(headers, value)
        envelope = Envelope.from_headers(headers)
        data = parse_data(envelope.type, value)
    except (SignatureRefused, EnvelopeError, ContractError) as error:
        log.warning("an unproven record on %s skipped: %s", topics.AUDIT_HEADS, error)
        return None
    return data if isinstance(data, AuditHeadAnchored) else None
