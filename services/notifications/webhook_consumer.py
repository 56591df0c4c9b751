"""Reads the delivery topics of partners that have a webhook and queues each delivery for it.

One consumer (group ``hub.notifications.webhooks``) subscribes to exactly the topics of
the partners in the ``webhooks`` table, re-read every few seconds so that ``hub webhook
add`` takes effect without a restart; other partners' deliveries are never read. Each
record goes through the hub's usual entrypoint translation (envelope and contract
checks, inbox, dead letters, trace continuation), then its offset is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contracts.catalog import CATALOG
from hub.errors import TransientError
from hub.runtime.consumer import MessageProcessor, RetryPolicy, Route, UnitOfWorkFactory
from hub.runtime.deadletter import DeadLetterWriter, dead_letter_topic
from hub.runtime.kafka import client_config, ensure_topics
from hub.runtime.settings import HubSettings
from hub.runtime.topics import in_hub, on_cluster
from services.notifications import handlers
from services.notifications.ports import UnitsOfWork

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

GROUP_ID = "hub.notifications.webhooks"


class WebhookConsumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: HubSettings,
        *,
        units: UnitsOfWork,
        unit_of_work: UnitOfWorkFactory,
        source: str,
        refresh_interval_s: float,
    ) -> None:
        """``pool`` is the runtime's (records are handled in its transactions, with units of work
        from ``unit_of_work``); ``units`` reads which partners have a webhook."""
        self._units, self._settings, self._refresh_interval_s = units, settings, refresh_interval_s
        # Whatever a partner may receive on its topic is forwarded: every catalogued type.
        route = Route(
            topic="hub.delivery.* (partners with a webhook)",
            group_id=GROUP_ID,
            handlers=dict.fromkeys(CATALOG, handlers.forward_to_webhook),
            unit_of_work=unit_of_work,
        )
        retry = RetryPolicy(settings.retry_backoff_initial_s, settings.retry_backoff_max_s)
        dead_letters = DeadLetterWriter(pool, max_stored_bytes=settings.dead_letter_max_stored_bytes)
        self._processor = MessageProcessor(pool, route, dead_letters, source=source, retry=retry)
        self._consumer: AIOKafkaConsumer | None = None
        self._topics: frozenset[str] = frozenset()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self._refresh()
                deadline = asyncio.get_running_loop().time() + self._refresh_interval_s
                while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
                    if not self._topics or self._consumer is None:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self._refresh_interval_s)
                        break
                    try:
                        await self._poll_once(self._consumer, stop)
                    except KafkaError as error:
                        # The broker is away or rebalancing; a crash here would stop the whole service.
                        log.warning("webhook deliveries: cannot poll (will retry): %s", error)
                        await asyncio.sleep(1)
        finally:
            if self._consumer is not None:
                await self._consumer.stop()

    async def _refresh(self) -> None:
        try:
            async with self._units.begin() as uow:
                topics = frozenset(await uow.webhooks.topics())
            if topics == self._topics:
                return
            if topics:
                await ensure_topics(self._settings, {*topics, *map(dead_letter_topic, topics)})
            consumer = await self._started_consumer()
            if topics:
                prefix = self._settings.topic_prefix
                consumer.subscribe(topics=sorted(on_cluster(topic, prefix) for topic in topics))
            else:
                consumer.unsubscribe()
            self._topics = topics
            log.info("webhook deliveries: reading %d partner topics", len(topics))
        except (OSError, KafkaError, TransientError) as error:  # the database or the broker is away
            log.warning("cannot refresh the webhook subscriptions (will retry): %s", error)

    async def _started_consumer(self) -> AIOKafkaConsumer:
        # Started lazily: a hub without webhook partners keeps no idle consumer group.
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                **client_config(self._settings, client_id="hub-notifications-webhooks"),
                group_id=on_cluster(GROUP_ID, self._settings.topic_prefix),
                enable_auto_commit=False,  # committed per record, after its effect is durable
                auto_offset_reset="earliest",
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def _poll_once(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        batches = await consumer.getmany(timeout_ms=500, max_records=100)
        for partition, records in batches.items():
            for record in records:
                # The hub's code sees its own topic names; positions stay the cluster's.
                named = replace(record, topic=in_hub(record.topic, self._settings.topic_prefix))
                await self._processor.process(named, stop)
                await self._commit(consumer, partition, record.offset + 1)

    async def _commit(self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({partition: offset})
        except KafkaError as error:
            # Lost the partition in a rebalance: its new owner re-reads, and the inbox drops the repeat.
            log.warning("commit of %s@%d failed: %s", partition, offset, error)
