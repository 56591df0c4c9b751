"""The one way bytes leave the hub for Kafka: a publisher the outbox relay drives.

``KafkaPublisher`` is the real adapter; ``InMemoryPublisher`` is its fake for unit
tests. Both pass the same contract tests (tests/contract/test_publisher_contract.py).

A batch is answered record by record (hub/runtime/send_results.py): one record the broker cannot
take fails alone, and the records acknowledged beside it are reported as acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hub.errors import BrokerUnavailable
from hub.runtime.kafka import producer_config
from hub.runtime.send_results import ACKNOWLEDGED, SendResult, failed, illegal_topic, transient
from hub.runtime.settings import HubSettings
from hub.runtime.topics import HUB_PREFIX, on_cluster

# How long a batch waits for partitions of a topic it has not sent to before; a topic that
# does not exist yet fails its records (to be retried) instead of holding up the others.
METADATA_WAIT_S = 2.0
# How long a batch waits for the broker's acknowledgements (aiokafka's own request timeout
# is 40 s): what is not acknowledged by then is reported as a transient failure.
ACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class Publisher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        """One result per record, in the records' order; records of one key are sent in order.

        Raises BrokerUnavailable only if nothing can be sent at all (not running).
        """
        ...

    async def reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether the broker answers now (for readiness); never raises."""
        ...


class KafkaPublisher:
    def __init__(
        self,
        settings: HubSettings,
        *,
        client_id: str,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        metadata_wait_s: float = METADATA_WAIT_S,
    ) -> None:
        self._producer = AIOKafkaProducer(**producer_config(settings, client_id=client_id))
        self._prefix = settings.topic_prefix
        self._ack_timeout_s = ack_timeout_s
        self._metadata_wait_s = metadata_wait_s
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

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        if not self._running:
            # aiokafka would wait for metadata forever on a stopped producer.
            raise BrokerUnavailable("Kafka producer is not running")
        deadline = asyncio.get_running_loop().time() + self._ack_timeout_s
        if self._prefix != HUB_PREFIX:
            records = [replace(record, topic=on_cluster(record.topic, self._prefix)) for record in records]
        topic_failures = await self._prepare_topics({record.topic for record in records})
        results: list[SendResult] = [ACKNOWLEDGED] * len(records)
        pending: dict[int, asyncio.Future[Any]] = {}
        for index, record in enumerate(records):
            refused = topic_failures.get(record.topic)
            if refused is not None:
                results[index] = refused
                continue
            queued = await self._queue(record, deadline)
            if isinstance(queued, SendResult):
                results[index] = queued
            else:
                pending[index] = queued
        await self._collect(pending, results, deadline)
        return results

    async def _prepare_topics(self, topics: Iterable[str]) -> dict[str, SendResult]:
        """Partitions of every topic of the batch, each topic tracked by the client from now on.

        aiokafka keeps partitions of every topic its first metadata answer named, but asks
        again only for the topics it tracks (those it once had to look up). Its first
        lookup of a new topic (a partner registered at runtime) replaces what it knows
        with the answer for the tracked topics alone: a record already queued for a known
        but untracked topic then has no leader, and waits out the request timeout (30 s
        here, 40 s in aiokafka) while the client asks for metadata in a tight loop, before
        it is sent late or fails. Tracking every topic before any record is queued keeps
        them all in every answer. Returns the failures of topics that cannot be used now.
        """
        failures: dict[str, SendResult] = {}
        wanted: list[str] = []
        for topic in topics:
            illegal = illegal_topic(topic)
            if illegal is not None:
                failures[topic] = illegal
            else:
                self._producer.client.add_topic(topic)
                wanted.append(topic)
        answers = await asyncio.gather(*(self._partitions(topic) for topic in wanted))
        failures |= {topic: answer for topic, answer in zip(wanted, answers, strict=True) if answer}
        return failures

    async def _partitions(self, topic: str) -> SendResult | None:
        try:
            async with asyncio.timeout(self._metadata_wait_s):
                await self._producer.partitions_for(topic)
        except TimeoutError:
            return transient(f"no partitions of {topic} known within {self._metadata_wait_s:.0f}s")
        except KafkaError as error:
            return failed(error, at_broker=False)
        return None

    async def _queue(self, record: OutgoingRecord, deadline: float) -> asyncio.Future[Any] | SendResult:
        """The record's acknowledgement future, or why it could not even be queued."""
        try:
            async with asyncio.timeout_at(deadline):
                # Cancelling send() itself (the timeout) un-queues the record: never sent.
                future: asyncio.Future[Any] = await self._producer.send(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
        except TimeoutError:
            return transient(f"not queued within {self._ack_timeout_s:.0f}s")
        except (KafkaError, ValueError, TypeError) as error:
            return failed(error, at_broker=False)
        return future

    async def _collect(
        self, pending: dict[int, asyncio.Future[Any]], results: list[SendResult], deadline: float
    ) -> None:
        if pending:
            timeout = max(deadline - asyncio.get_running_loop().time(), 0.0)
            await asyncio.wait(pending.values(), timeout=timeout)
        for index, future in pending.items():
            if not future.done():
                # It may still be delivered: a retry can duplicate it (consumers drop the copy).
                future.add_done_callback(_retrieve)
                results[index] = transient(f"not acknowledged within {self._ack_timeout_s:.0f}s")
            elif future.cancelled():
                results[index] = transient("sending was cancelled")
            elif (error := future.exception()) is not None:
                results[index] = failed(error, at_broker=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Take the late outcome of a record given up on, so asyncio does not log it as unhandled."""
    with contextlib.suppress(asyncio.CancelledError):
        future.exception()


@dataclass
class InMemoryPublisher:
    """Fake publisher: keeps records in order; can be told to fail like a broker.

    ``unavailable``: an outage (``send_batch`` raises). ``max_request_bytes``: a record larger
    than that fails on its own, as aiokafka's client-side check fails it.
    ``max_message_bytes``: the broker refuses the batch of a topic that holds a larger
    record, as Apache Kafka refuses a partition's whole batch for the topic's
    ``max.message.bytes``: every record of that topic in the call fails with it.
    ``unknown_topics``: topics without partitions yet; their records fail for now, as
    ``KafkaPublisher`` reports a topic whose metadata does not come in time.
    """

    sent: list[OutgoingRecord] = field(default_factory=list)
    unavailable: bool = False
    started: bool = False
    max_request_bytes: int = 1024 * 1024
    max_message_bytes: int | None = None
    unknown_topics: set[str] = field(default_factory=set)
    calls: int = 0

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        if self.unavailable or not self.started:
            raise BrokerUnavailable("in-memory broker is unavailable")
        self.calls += 1
        refused_topics = {r.topic for r in records if self._over_topic_limit(r)}
        results: list[SendResult] = []
        for record in records:
            result = self._result(record, refused_topics)
            if result.acknowledged:
                self.sent.append(record)
            results.append(result)
        return results

    def _result(self, record: OutgoingRecord, refused_topics: set[str]) -> SendResult:
        illegal = illegal_topic(record.topic)
        if illegal is not None:
            return illegal
        if record.topic in self.unknown_topics:
            return transient(f"no partitions of {record.topic} known")
        if _size(record) > self.max_request_bytes:
            return SendResult(
                error=f"MessageSizeTooLargeError: {_size(record)} bytes over max_request_size",
                permanent=True,
            )
        if record.topic in refused_topics:
            return SendResult(
                error="MessageSizeTooLargeError: the record batch is over max.message.bytes",
                permanent=True,
                batch_refused=True,
            )
        return ACKNOWLEDGED

    def _over_topic_limit(self, record: OutgoingRecord) -> bool:
        return self.max_message_bytes is not None and _size(record) > self.max_message_bytes

    async def reachable(self, timeout_s: float = 2.0) -> bool:
        return self.started and not self.unavailable


def _size(record: OutgoingRecord) -> int:
    return len(record.key) + len(record.value) + sum(len(name) + len(value) for name, value in record.headers)
