"""Two hubs on one Kafka cluster, one environment per HUB_TOPIC_PREFIX: each runs its cases
on its own topics and consumer groups, and neither reads, refuses or dead-letters the
other's records (before the prefix, a test run's event was dead-lettered by another hub's
registry as an unknown case)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hub.local.demo import run_demo
from hub.local.supervisor import Supervisor
from hub.runtime.settings import HubSettings
from tests.fixtures.infrastructure import Infrastructure, fresh_database, settings_for

PREFIXES = ("hub", "lu-test.hub2")


@pytest.fixture(scope="module")
def hubs(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[HubSettings]]:
    """Both hubs at once, each with its own database and state, on the one broker."""
    with fresh_database(infrastructure) as first_db, fresh_database(infrastructure) as second_db:
        supervisors = []
        try:
            for prefix, database in zip(PREFIXES, (first_db, second_db), strict=True):
                settings = settings_for(infrastructure, database, tmp_path_factory.mktemp(prefix))
                supervisor = Supervisor(settings.model_copy(update={"topic_prefix": prefix}))
                supervisors.append(supervisor)
                endpoints = supervisor.start()
                assert endpoints is not None
            yield [s.running_settings() for s in supervisors]
        finally:
            for supervisor in supervisors:
                supervisor.stop()


async def _rows(settings: HubSettings, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return [dict(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def _topics(settings: HubSettings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


def test_each_hub_runs_its_cases_and_never_sees_the_others(hubs: list[HubSettings]) -> None:
    first, second = hubs
    assert (first.topic_prefix, second.topic_prefix) == PREFIXES
    cases = {}
    for settings in hubs:
        view = asyncio.run(run_demo(settings, progress=lambda _line: None, timeout_s=120))
        assert view.status == "completed"
        cases[settings.topic_prefix] = view.case_id
    for settings in hubs:
        held = {row["case_id"] for row in asyncio.run(_rows(settings, "SELECT case_id FROM registry.cases"))}
        assert held == {cases[settings.topic_prefix]}
        for service in ("registry", "identity", "notifications"):
            dead = asyncio.run(_rows(settings, f"SELECT topic, kafka_offset FROM {service}.dead_letters"))
            assert dead == [], f"{settings.topic_prefix}'s {service} dead-lettered {dead}"
    on_cluster = asyncio.run(_topics(first))
    assert "lu-test.hub2.admin" in on_cluster
    assert "lu-test.hub2.delivery.ch.mun.1059.einwohnerdienste" in on_cluster
    assert "lu-test.hub2.ingress.ch.can.lu.eportal" in on_cluster
