"""The chaos run's own Kafka clients: a producer that insists, and a reader of whole topics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from hub.local.chaos.scenario import Headers, Record

log = logging.getLogger(__name__)

# Longer than any broker pause the run makes: a send waits the pause out instead of failing,
# so a record is rarely sent twice (a resend keeps its ce_id, but a poison record resent would
# be a second poison record on the topic).
REQUEST_TIMEOUT_MS = 30_000
READ_TIMEOUT_S = 120.0
IDLE_POLLS = 3  # a topic is read once this many polls in a row brought nothing
IDLE_POLL_MS = 500


class InsistentProducer:
    """Sends a record until the broker acknowledges it (acks=all), backing off between tries."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            enable_idempotence=False,  # the embedded broker rejects InitProducerId
            linger_ms=2,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            client_id="chaos-partners",
        )
        self.resends = 0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, record: Record) -> None:
        delay = 0.2
        while True:
            try:
                await self._producer.send_and_wait(
                    topic, record.value, key=record.key, headers=list(record.headers)
                )
                return
            except KafkaError as error:
                self.resends += 1
                log.warning("resending %s to %s in %.1fs: %r", record.event_id, topic, delay, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


@dataclass(frozen=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers

    def header(self, name: str) -> str | None:
        values = [value.decode("utf-8", errors="replace") for key, value in self.headers if key == name]
        return values[-1] if values else None


async def list_topics(bootstrap_servers: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        return {str(topic) for topic in await consumer.topics()}
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap_servers: str, topic: str, *, timeout_s: float = READ_TIMEOUT_S
) -> list[ReadRecord]:
    """Every record of ``topic``, read from the beginning until nothing more comes.

    Not "up to the end offsets": the embedded broker (Tansu, memory engine) answers
    ListOffsets(latest) with a value that lags behind the last batch written (measured:
    1 after a first batch of ~100 records per partition), so its end offsets would cut the newest
    records off. The run has settled when this is called, so an idle topic is a complete one.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata, so that the topic's partitions are known
        assigned = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not assigned:
            return []
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: list[ReadRecord] = []
        idle = 0
        async with asyncio.timeout(timeout_s):
            while idle < IDLE_POLLS:
                batches = await consumer.getmany(*assigned, timeout_ms=IDLE_POLL_MS)
                idle = 0 if batches else idle + 1
                for records in batches.values():
                    found += [
                        ReadRecord(r.topic, r.partition, r.offset, r.key, r.value or b"", tuple(r.headers))
                        for r in records
                    ]
        return found
    finally:
        await consumer.stop()
