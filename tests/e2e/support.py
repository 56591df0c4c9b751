"""What end-to-end modules that drive the hub's processes themselves share: the hub with its
supervisor, the agencies that answer deliveries, and a topic read to its end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from hub.local.demo import relocation_responders, run_agency
from hub.local.partner_client import PartnerClient, RefusedDelivery
from hub.local.supervisor import Supervisor
from hub.runtime.settings import HubSettings
from tests.fixtures.infrastructure import Infrastructure, fresh_database, settings_for


@dataclass(frozen=True)
class Hub:
    settings: HubSettings
    supervisor: Supervisor  # to stop, restart or look into one service


@contextlib.contextmanager
def supervised_hub(
    infrastructure: Infrastructure,
    tmp_path_factory: pytest.TempPathFactory,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Hub]:
    """The three services as processes on a database of their own, so cases and partners of
    one module do not meet another's."""
    with fresh_database(infrastructure) as database_url:
        settings = settings_for(infrastructure, database_url, tmp_path_factory.mktemp("hub"))
        supervisor = Supervisor(settings, extra_env=extra_env or {})
        endpoints = supervisor.start()
        try:
            yield Hub(endpoints.apply(settings), supervisor)
        finally:
            supervisor.stop()


def _skip(_refused: RefusedDelivery) -> None:
    """The session's broker holds deliveries of other hubs (other test modules), signed with
    other keys: not this run's, and skipped."""


async def answer_deliveries(client: PartnerClient, cases: set[str]) -> None:
    """An agency's system: answers the move delivery of each of ``cases`` as the demo's
    agencies do (``relocation_responders``), until cancelled."""
    await run_agency(client, cases, relocation_responders("main")[client.partner_id], on_refused=_skip)


async def cancel_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel and wait for ``tasks``; how each ended does not matter any more."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def read_all(settings: HubSettings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` up to its current end (none if it does not exist)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        await consumer.topics()  # loads the metadata partitions_for_topic answers from
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        async with asyncio.timeout(30):
            while any([await consumer.position(p) < end[p] for p in partitions]):
                for batch in (await consumer.getmany(*partitions, timeout_ms=500)).values():
                    records += batch
    finally:
        await consumer.stop()
    return records
