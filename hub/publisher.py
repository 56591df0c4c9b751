"""The one way bytes leave the hub for Kafka: a publisher the outbox relay drives.

``KafkaPublisher`` is the real adapter; ``InMemoryPublisher`` is its fake for unit
tests. Both pass the same contract tests (tests/contract/test_publisher_contract.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hub.errors import BrokerUnavailable
from hub.kafka import producer_config
from hub.settings import HubSettings


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class Publisher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> None:
        """Return once the broker acknowledged every record; raise BrokerUnavailable otherwise."""
        ...

    async def reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether the broker answers now (for readiness); never raises."""
        ...


class KafkaPublisher:
    def __init__(self, settings: HubSettings, *, client_id: str) -> None:
        self._producer = AIOKafkaProducer(**producer_config(settings, client_id=client_id))
        self._timeout_s = 30.0
        self._running = False

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as error:
            await self._producer.stop()
            raise BrokerUnavailable(f"cannot start Kafka producer: {error}") from error
        self._running = True

    async def stop(self) -> None:
        self._running = False
        await self._producer.stop()

    async def reachable(self, timeout_s: float = 2.0) -> bool:
        # A live metadata request: cached cluster metadata would say "connected" long
        # after the broker went away.
        if not self._running:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError, OSError):
            return False
        return True

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> None:
        if not self._running:
            # aiokafka would wait for metadata forever on a stopped producer.
            raise BrokerUnavailable("Kafka producer is not running")
        try:
            async with asyncio.timeout(self._timeout_s):
                # send() only enqueues; records of one key go to one partition in call order.
                futures = [
                    await self._producer.send(r.topic, r.value, key=r.key, headers=list(r.headers))
                    for r in records
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as error:
            raise BrokerUnavailable(f"Kafka did not acknowledge: {error!r}") from error


@dataclass
class InMemoryPublisher:
    """Fake publisher: keeps records in order; can be told to fail like a broker outage."""

    sent: list[OutgoingRecord] = field(default_factory=list)
    unavailable: bool = False
    started: bool = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> None:
        if self.unavailable or not self.started:
            raise BrokerUnavailable("in-memory broker is unavailable")
        self.sent.extend(records)

    async def reachable(self, timeout_s: float = 2.0) -> bool:
        return self.started and not self.unavailable
