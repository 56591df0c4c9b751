"""The embedded Kafka-protocol broker (Tansu) with a real aiokafka client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.local.embedded import EmbeddedError, EmbeddedKafka

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    broker = EmbeddedKafka(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


@pytest.mark.asyncio
async def test_topic_with_three_partitions_carries_a_message_with_headers(kafka: EmbeddedKafka) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("relocations", num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            "relocations", b'{"case": 1}', key=b"case-1", partition=2, headers=[("ce_id", b"42")]
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        "relocations", bootstrap_servers=kafka.bootstrap_servers, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        assert consumer.partitions_for_topic("relocations") == {0, 1, 2}
        received = await asyncio.wait_for(consumer.getone(), timeout=10)
    finally:
        await consumer.stop()

    assert (sent.partition, received.partition) == (2, 2)
    assert (received.key, received.value) == (b"case-1", b'{"case": 1}')
    assert list(received.headers) == [("ce_id", b"42")]


@pytest.mark.asyncio
async def test_produce_waits_while_broker_is_paused_and_completes_after_resume(kafka: EmbeddedKafka) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait("pings", b"warm-up", partition=0)  # creates the topic, caches metadata
        kafka.pause()
        try:
            delivery = await producer.send("pings", b"during pause", partition=0)
            done, _ = await asyncio.wait({delivery}, timeout=1.0)
            assert not done, "a paused broker acknowledged a message"
        finally:
            kafka.resume()
        metadata = await asyncio.wait_for(delivery, timeout=10)
        assert metadata.offset == 1
    finally:
        await producer.stop()


def test_start_fails_with_log_tail_when_port_is_taken(tmp_path: Path, kafka: EmbeddedKafka) -> None:
    second = EmbeddedKafka(tmp_path / "second", port=kafka.port)
    with pytest.raises(EmbeddedError, match="already listens") as failure:
        second.start()
    assert second.pid is not None
    assert not second.running
    assert f"last log lines of {tmp_path / 'second' / 'tansu.log'}" in str(failure.value)
