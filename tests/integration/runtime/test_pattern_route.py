"""A route with a pattern reads every matching topic, also one created while it runs.

The registry reads every partner's own ingress topic this way, and a partner registered at
runtime gets its topic then: the route must pick it up within seconds, on the embedded
broker as on Kafka. A real ServiceRuntime (FastStream subscriber, embedded broker,
PostgreSQL) with the shutdown tests' effect table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.runtime.consumer import Route
from hub.runtime.kafka import ensure_topics
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from hub.runtime.service import PATTERN_METADATA_MAX_AGE_MS, ServiceContext, ServiceDefinition, ServiceRuntime
from hub.runtime.settings import HubSettings

pytestmark = pytest.mark.asyncio

SCHEMA = "pattern_route_test"
# A new topic is read after the next metadata refresh and the group's rebalance (a few
# seconds on Tansu); far less than the 5 minutes of the default refresh.
PICK_UP_S = PATTERN_METADATA_MAX_AGE_MS / 1000 + 20


@pytest_asyncio.fixture
async def db(hub_settings: HubSettings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(hub_settings.database_dsn())
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await conn.execute(f"SET search_path TO {SCHEMA}")
    yield conn
    await conn.close()


def _runtime(settings: HubSettings, prefix: str, group: str) -> ServiceRuntime:
    async def handler(msg: Incoming[Any], tx: Transaction) -> None:
        await tx.conn.execute(
            "INSERT INTO effects (event_id, runtime) VALUES ($1, $2)", msg.envelope.id, msg.topic
        )

    def routes(_ctx: ServiceContext) -> list[Route]:
        # The route's name is the prefix itself: its dead letters go to "<prefix>-dlt",
        # which the pattern does not match (as hub.ingress-dlt for the registry).
        pattern = prefix.replace(".", r"\.") + r"\.[a-z0-9-]+$"
        return [Route(prefix, group, {DepartureConfirmed.event_type: handler}, pattern=pattern)]

    definition = ServiceDefinition(
        name=SCHEMA,
        migrations_package="tests.integration.runtime.shutdown_migrations",
        topics=(),
        routes=routes,
    )
    return ServiceRuntime(definition, settings)


async def _send(settings: HubSettings, topic: str, event_id: str) -> None:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on=dt.date(2026, 12, 1))
    envelope = Envelope.new(
        data, source="urn:test:pattern", business_process_id=f"case-{event_id}", event_id=event_id
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, data.model_dump_json().encode(), headers=envelope.to_headers())
    finally:
        await producer.stop()


async def _effects(db: asyncpg.Connection) -> dict[str, str]:
    return {
        row["event_id"]: row["runtime"] for row in await db.fetch("SELECT event_id, runtime FROM effects")
    }


async def _wait_for_effect(db: asyncpg.Connection, event_id: str, timeout_s: float) -> dict[str, str]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while event_id not in (effects := await _effects(db)):
        assert asyncio.get_running_loop().time() < deadline, f"{event_id} not handled within {timeout_s:.0f}s"
        await asyncio.sleep(0.1)
    return effects


async def _topics(settings: HubSettings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_pattern_route_reads_a_topic_created_after_it_started(
    hub_settings: HubSettings, db: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:8]
    prefix = f"test.pattern.{run}"
    settings = hub_settings.model_copy(update={"kafka_topic_partitions": 1})
    first, later, other = f"{prefix}.first", f"{prefix}.later", f"test.patternx.{run}.first"
    await ensure_topics(settings, [first, other])
    runtime = _runtime(settings, prefix, f"hub.test.pattern.{run}")
    await runtime.start()
    try:
        await _send(settings, first, "on-first")
        await _send(settings, other, "on-other")
        await _wait_for_effect(db, "on-first", 30)

        await ensure_topics(settings, [later])  # a partner registered at runtime
        began = asyncio.get_running_loop().time()
        await _send(settings, later, "on-later")
        effects = await _wait_for_effect(db, "on-later", PICK_UP_S)
        took = asyncio.get_running_loop().time() - began
        await _send(settings, prefix + "-dlt", "on-dead-letter-topic")
        await _send(settings, first, "after")
        effects = await _wait_for_effect(db, "after", 30)
    finally:
        await runtime.stop()

    assert effects == {"on-first": first, "on-later": later, "after": first}  # nothing else matched
    assert took < PICK_UP_S
    topics_now = await _topics(settings)
    assert prefix + "-dlt" in topics_now  # the route's one dead-letter topic was created
    assert prefix not in topics_now  # and no topic named after the pattern's route
