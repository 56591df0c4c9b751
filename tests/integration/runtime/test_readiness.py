"""Readiness asks whether every consumer joined its group, not whether it holds partitions.

Two replicas of one service on a topic of one partition, as when a deployment runs more
replicas than partitions: one holds the partition, the other is a standby with none. Both
are ready (``/readyz`` would answer 200 for both), so the standby does not hold up a
rollout, and ``assigned_partitions`` shows which one reads. Likewise a pattern route that
matches no topic yet (the registry before its first partner's ingress topic exists).
"""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import pytest

from contracts import DepartureConfirmed
from hub.runtime.consumer import Route
from hub.runtime.db import create_pool
from hub.runtime.service import ServiceContext, ServiceDefinition, ServiceRuntime
from hub.runtime.settings import HubSettings

pytestmark = pytest.mark.asyncio


def _replica(settings: HubSettings, topic: str, group: str, pattern: str | None = None) -> ServiceRuntime:
    async def ignore(*_: object) -> None:
        pass

    def routes(_ctx: ServiceContext) -> list[Route]:
        return [Route(topic, group, {DepartureConfirmed.event_type: ignore}, pattern=pattern)]

    definition = ServiceDefinition(
        name="readiness_test",
        migrations_package="tests.integration.runtime.shutdown_migrations",
        topics=() if pattern else (topic,),
        routes=routes,
    )
    return ServiceRuntime(definition, settings)


async def test_a_replica_without_partitions_is_a_ready_standby(hub_settings: HubSettings) -> None:
    settings = hub_settings.model_copy(update={"kafka_topic_partitions": 1})
    topic, group = f"test.readiness.{uuid.uuid4().hex[:8]}", f"hub.test.readiness.{uuid.uuid4().hex[:8]}"
    replicas = [_replica(settings, topic, group) for _ in range(2)]
    # Started at once, as a deployment's replicas are (both create the schema, then migrate).
    started = await asyncio.gather(*(replica.start() for replica in replicas), return_exceptions=True)
    try:
        assert [outcome for outcome in started if outcome is not None] == []
        # The joins may take two rounds (one replica, then both): wait until the group settled.
        async with asyncio.timeout(30):
            while sorted([int((await r.readiness())["assigned_partitions"]) for r in replicas]) != [0, 1]:
                await asyncio.sleep(0.1)
        checks = [await replica.readiness() for replica in replicas]
        assert sorted(int(c["assigned_partitions"]) for c in checks) == [0, 1]
        for c in checks:
            assert c["ok_groups_joined"] is True
            assert all(v is True for k, v in c.items() if k.startswith("ok_")), c  # what /readyz answers
    finally:
        await asyncio.gather(*(replica.stop() for replica in replicas))


async def test_a_pattern_route_that_matches_no_topic_yet_is_ready(hub_settings: HubSettings) -> None:
    prefix = f"test.readiness.{uuid.uuid4().hex[:8]}"
    runtime = _replica(hub_settings, prefix, f"hub.{prefix}", pattern=rf"{re.escape(prefix)}\.partner\..+")
    await runtime.start()
    try:
        checks = await runtime.readiness()
        assert checks["assigned_partitions"] == 0
        assert all(v is True for k, v in checks.items() if k.startswith("ok_")), checks
    finally:
        await runtime.stop()


async def test_a_schema_another_replica_creates_at_the_same_moment_is_used(hub_settings: HubSettings) -> None:
    """``CREATE SCHEMA IF NOT EXISTS`` waits for a concurrent, uncommitted ``CREATE`` of the
    same schema and then fails on the catalogue's unique index; the replica must go on."""
    schema = f"replicas_{uuid.uuid4().hex[:8]}"
    other = await asyncpg.connect(hub_settings.database_dsn())
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute(f'CREATE SCHEMA "{schema}"')  # the other replica, not committed yet
        creating = asyncio.create_task(create_pool(hub_settings.database_dsn(), schema, size=1))
        await asyncio.sleep(0.5)
        assert not creating.done()  # waiting for the other replica's transaction
        await transaction.commit()
        pool = await asyncio.wait_for(creating, timeout=10)
    finally:
        await other.close()
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_schemas(false)") == [schema, "public"]
    finally:
        await pool.close()
