"""A transient failure pauses only its own partition; the others keep flowing.

A real ServiceRuntime (FastStream subscriber, embedded broker, PostgreSQL) with a handler
that fails for one record until the records of the other partition have been processed.
If a retry held up the whole subscriber, they never would be, and the failing record
would exhaust the patience below instead.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.errors import TransientError
from hub.runtime.consumer import Route
from hub.runtime.health import HealthServer
from hub.runtime.messages import Incoming
from hub.runtime.outbox import Transaction
from hub.runtime.service import ServiceContext, ServiceDefinition, ServiceRuntime
from hub.runtime.settings import HubSettings

pytestmark = pytest.mark.asyncio
PATIENCE = 200  # attempts before the failing record gives up failing (a bound, not a goal)
OTHERS = 5


def _event(event_id: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    envelope = Envelope.new(
        data, source="urn:test:backoff", business_process_id=f"case-{event_id}", event_id=event_id
    )
    return data.model_dump_json().encode(), envelope.to_headers()


async def _wait_for(check: Any, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_retrying_record_does_not_hold_up_other_partitions(hub_settings: HubSettings) -> None:
    topic = f"test.backoff.{uuid.uuid4().hex[:8]}"
    settings = hub_settings.model_copy(
        update={"kafka_topic_partitions": 2, "retry_backoff_initial_s": 0.05, "retry_backoff_max_s": 0.2}
    )
    first_failure = asyncio.Event()
    failing_attempts = 0
    others_done = 0

    async def handler(msg: Incoming[Any], tx: Transaction) -> None:
        nonlocal failing_attempts, others_done
        if msg.envelope.id == "failing":
            failing_attempts += 1
            first_failure.set()
            if others_done < OTHERS and failing_attempts < PATIENCE:
                raise TransientError("database away (simulated for this record only)")
        else:
            others_done += 1
        await tx.conn.execute(
            "INSERT INTO effects (partition, event_id) VALUES ($1, $2)", msg.partition, msg.envelope.id
        )

    def routes(_ctx: ServiceContext) -> list[Route]:
        return [Route(topic, "hub.test.backoff", {DepartureConfirmed.event_type: handler})]

    definition = ServiceDefinition(
        name="backoff_test",
        migrations_package="tests.integration.runtime.backoff_migrations",
        topics=(topic,),
        routes=routes,
    )
    runtime = ServiceRuntime(definition, settings)
    await runtime.start()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), enable_idempotence=False)
    await producer.start()
    try:

        async def partitions_assigned() -> bool:
            return bool((await runtime.readiness())["assigned_partitions"])

        await _wait_for(partitions_assigned)
        value, headers = _event("failing")
        await producer.send_and_wait(topic, value, headers=headers, partition=0)
        value, headers = _event("after-failing")
        await producer.send_and_wait(topic, value, headers=headers, partition=0)
        await asyncio.wait_for(first_failure.wait(), 30)
        for n in range(OTHERS):
            value, headers = _event(f"other-{n}")
            await producer.send_and_wait(topic, value, headers=headers, partition=1)

        assert runtime.pool is not None
        pool = runtime.pool

        async def all_effects() -> bool:
            async with pool.acquire() as conn:
                return int(await conn.fetchval("SELECT count(*) FROM effects")) == OTHERS + 2

        await _wait_for(all_effects)
        async with pool.acquire() as conn:
            order = [row["event_id"] for row in await conn.fetch("SELECT event_id FROM effects ORDER BY seq")]
        ready, metrics = await _probe(runtime)
    finally:
        await producer.stop()
        await runtime.stop()

    assert failing_attempts < PATIENCE, "the other partition waited for the failing record"
    assert failing_attempts > 1
    # The other partition went first; the failing partition kept its own order.
    assert order[:OTHERS] == [f"other-{n}" for n in range(OTHERS)]
    assert order[OTHERS:] == ["failing", "after-failing"]
    # What the deployment's probes and scraper see over HTTP.
    assert ready["ready"] is True
    assert ready["ok_groups_joined"] is True
    assert ready["ok_broker"] is True
    processed = (
        'hub_consumer_records_total{group="hub.test.backoff",outcome="processed",service="backoff_test"}'
    )
    assert f"{processed} {float(OTHERS + 2)}" in metrics.splitlines()
    assert 'hub_outbox_backlog{service="backoff_test"} 0.0' in metrics.splitlines()
    # Time to a committed outcome, per route: every processed record is in the histogram.
    count = f'hub_record_processing_seconds_count{{route="{topic}",service="backoff_test"}}'
    assert f"{count} {float(OTHERS + 2)}" in metrics.splitlines()


async def _probe(runtime: ServiceRuntime) -> tuple[dict[str, Any], str]:
    health = HealthServer(runtime.readiness, metrics=runtime.metrics)
    await health.start()
    try:

        def get(path: str) -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{health.port}{path}", timeout=5) as answer:
                return bytes(answer.read())

        ready = json.loads(await asyncio.to_thread(get, "/readyz"))
        metrics = (await asyncio.to_thread(get, "/metrics")).decode()
    finally:
        await health.stop()
    return ready, metrics
