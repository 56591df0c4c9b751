"""One suite, two adapters: the in-memory publisher may not drift from the Kafka one."""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from hub.errors import BrokerUnavailable
from hub.runtime.kafka import ensure_topics
from hub.runtime.publisher import InMemoryPublisher, KafkaPublisher, OutgoingRecord, Publisher
from hub.runtime.settings import HubSettings
from tests.fixtures.topics import read_topic

pytestmark = pytest.mark.asyncio


class PublisherContract(abc.ABC):
    """What every Publisher promises the outbox relay."""

    @abc.abstractmethod
    async def read_back(self, publisher: Publisher, topic: str, count: int) -> list[tuple[bytes, bytes]]: ...

    async def test_records_of_one_key_arrive_in_order_with_headers(
        self, publisher: Publisher, topic: str
    ) -> None:
        records = [
            OutgoingRecord(topic, b"case-1", f"v{n}".encode(), (("ce_id", f"e{n}".encode()),))
            for n in range(5)
        ]
        await publisher.send_batch(records)
        assert await self.read_back(publisher, topic, 5) == [(b"case-1", f"v{n}".encode()) for n in range(5)]

    async def test_a_record_too_large_fails_alone_for_good_and_the_others_are_acknowledged(
        self, publisher: Publisher, topic: str
    ) -> None:
        too_large = b"x" * (2 * 1024 * 1024)  # over the default 1 MiB max_request_size
        records = [
            OutgoingRecord(topic, b"case-1", b"before", ()),
            OutgoingRecord(topic, b"case-1", too_large, ()),
            OutgoingRecord(topic, b"case-1", b"after", ()),
        ]
        results = await publisher.send_batch(records)
        assert [r.acknowledged for r in results] == [True, False, True]
        assert results[1].permanent
        assert results[1].error is not None
        assert "MessageSizeTooLargeError" in results[1].error
        assert await self.read_back(publisher, topic, 2) == [(b"case-1", b"before"), (b"case-1", b"after")]

    async def test_a_record_for_an_illegal_topic_fails_alone_for_good(
        self, publisher: Publisher, topic: str
    ) -> None:
        results = await publisher.send_batch(
            [
                OutgoingRecord("no spaces allowed", b"case-1", b"v", ()),
                OutgoingRecord(topic, b"case-2", b"w", ()),
            ]
        )
        assert results[0].permanent
        assert not results[0].batch_refused
        assert results[0].error is not None
        assert "InvalidTopicError" in results[0].error
        assert results[1].acknowledged
        assert await self.read_back(publisher, topic, 1) == [(b"case-2", b"w")]

    async def test_sending_after_stop_raises_broker_unavailable(
        self, publisher: Publisher, topic: str
    ) -> None:
        await publisher.stop()
        with pytest.raises(BrokerUnavailable):
            await publisher.send_batch([OutgoingRecord(topic, b"k", b"v", ())])

    async def test_reachable_while_running_and_not_after_stop(self, publisher: Publisher) -> None:
        assert await publisher.reachable() is True
        await publisher.stop()
        assert await publisher.reachable() is False


class TestInMemoryPublisher(PublisherContract):
    @pytest_asyncio.fixture
    async def publisher(self) -> AsyncIterator[Publisher]:
        publisher = InMemoryPublisher()
        await publisher.start()
        yield publisher

    @pytest.fixture
    def topic(self) -> str:
        return "t"

    async def read_back(self, publisher: Publisher, topic: str, count: int) -> list[tuple[bytes, bytes]]:
        assert isinstance(publisher, InMemoryPublisher)
        return [(r.key, r.value) for r in publisher.sent if r.topic == topic][:count]


class TestKafkaPublisher(PublisherContract):
    @pytest_asyncio.fixture
    async def publisher(self, hub_settings: HubSettings) -> AsyncIterator[Publisher]:
        self.settings = hub_settings
        publisher = KafkaPublisher(hub_settings, client_id="contract-test")
        await publisher.start()
        yield publisher
        await publisher.stop()

    @pytest_asyncio.fixture
    async def topic(self, hub_settings: HubSettings) -> str:
        name = f"test.publisher.{uuid.uuid4().hex[:8]}"
        await ensure_topics(hub_settings, [name])
        return name

    async def read_back(self, publisher: Publisher, topic: str, count: int) -> list[tuple[bytes, bytes]]:
        # Everything sent was acknowledged: reading the topic to its end finds it, without
        # the seconds a consumer group takes to join.
        records = await read_topic(self.settings.bootstrap_servers(), topic)
        in_order = sorted(records, key=lambda r: (r.partition, r.offset))
        return [(r.key or b"", r.value or b"") for r in in_order][:count]


async def test_kafka_publisher_reports_an_unreachable_broker(hub_settings: HubSettings) -> None:
    from hub.local.embedded.ports import free_port

    nowhere = hub_settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    publisher = KafkaPublisher(nowhere, client_id="nowhere")
    with pytest.raises(BrokerUnavailable):
        await publisher.start()
