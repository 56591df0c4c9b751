"""Kafka client configuration and topic management, from the hub's settings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hub.errors import BrokerUnavailable
from hub.runtime.kafka_security import aiokafka_security
from hub.runtime.settings import RECORD_OVERHEAD_BYTES, HubSettings
from hub.runtime.topics import on_cluster, topic_config


def client_config(settings: HubSettings, *, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_servers(),
        "client_id": client_id,
        **aiokafka_security(settings),
    }


def producer_config(settings: HubSettings, *, client_id: str) -> dict[str, Any]:
    return {
        **client_config(settings, client_id=client_id),
        "acks": "all",
        "enable_idempotence": settings.kafka_enable_idempotence,
        "linger_ms": 5,
        "compression_type": "gzip",
        "max_batch_size": 256 * 1024,
        # Checked by the client before a record is queued: too large fails that one record at
        # once (MessageSizeTooLargeError), not a batch at the broker.
        "max_request_size": settings.kafka_max_request_bytes,
    }


def ingress_max_message_bytes(settings: HubSettings) -> int:
    """``max.message.bytes`` of the topics partners write: the hub's own limit on what it
    reads (which counts key, value and headers) plus what Kafka adds around a record."""
    return settings.max_message_bytes + RECORD_OVERHEAD_BYTES


async def ensure_topics(settings: HubSettings, topics: Iterable[str]) -> None:
    """Create the hub's topics if missing (production clusters may pre-create them)."""
    admin = AIOKafkaAdminClient(**client_config(settings, client_id="hub-admin"))
    try:
        await admin.start()
    except KafkaError as error:
        raise BrokerUnavailable(f"cannot reach Kafka at {settings.bootstrap_servers()}: {error}") from error
    try:
        existing = set(await admin.list_topics())
        prefix = settings.topic_prefix
        wanted = sorted(name for name in set(topics) if on_cluster(name, prefix) not in existing)
        if not wanted:
            return
        new_topics = [
            NewTopic(
                on_cluster(name, prefix),
                num_partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
                # Erasure cannot reach a record in Kafka; retention bounds how long it stays.
                # Partners' ingress topics refuse records larger than the hub reads.
                topic_configs=topic_config(
                    name,
                    retention_hours=settings.kafka_retention_hours,
                    max_message_bytes=ingress_max_message_bytes(settings),
                ),
            )
            for name in wanted
        ]
        # Another service may create the same topic concurrently.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new_topics)
    finally:
        await admin.close()
