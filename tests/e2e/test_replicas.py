"""Two replicas of the registry, each with a state directory of its own, serve cases together
because both read the same configured secrets (made once with ``hub secrets create``), as
pods of one Deployment do. Before secrets were explicit, a second registry minted its own
master key and dead-lettered identity's answers: their data keys were wrapped by a key not
in its ring."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.local.demo import run_demo
from hub.local.supervisor import Supervisor
from hub.runtime.settings import HubSettings
from hub.security.secrets import create_secrets
from tests.fixtures.infrastructure import Infrastructure, fresh_database, settings_for

CASES = 6


@pytest.fixture(scope="module")
def replicas(
    infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubSettings, list[Supervisor]]]:
    secrets = tmp_path_factory.mktemp("secrets") / "hub"
    create_secrets(secrets)
    configured = {
        "HUB_MASTER_KEY_FILE": str(secrets / "master.key"),
        "HUB_PSEUDONYM_KEY_FILE": str(secrets / "pseudonym.key"),
        "HUB_AUDIT_KEY_FILE": str(secrets / "audit.key"),
        "HUB_SIGNING_KEY_FILE": str(secrets / "hub-signing.key"),
    }
    # No service may invent a key: a missing secret stops it instead.
    services_env = {**configured, "HUB_LOCAL_SECRETS": "false"}
    with pytest.MonkeyPatch.context() as patch, fresh_database(infrastructure) as database_url:
        for name, value in configured.items():
            patch.setenv(name, value)  # the partners this process plays trust the same hub key
        first = settings_for(infrastructure, database_url, tmp_path_factory.mktemp("replica-1"))
        second = first.model_copy(update={"state_dir": tmp_path_factory.mktemp("replica-2")})
        hub = Supervisor(first, extra_env=services_env)
        registry_again = Supervisor(second, services=["registry"], extra_env=services_env)
        started: list[Supervisor] = []
        try:
            for supervisor in (hub, registry_again):
                supervisor.start()
                started.append(supervisor)
            yield hub.running_settings(), started
        finally:
            for supervisor in reversed(started):
                supervisor.stop()


def _processed(supervisor: Supervisor) -> float:
    port = supervisor.processes["registry"].health_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "hub_consumer_records_total" and sample.labels["outcome"] == "processed"
    )


async def _dead_letters(settings: HubSettings) -> int:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return sum(
            [
                await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letters")
                for schema in ("registry", "identity", "notifications")
            ]
        )
    finally:
        await conn.close()


def test_two_registries_with_their_own_state_serve_the_cases_together(
    replicas: tuple[HubSettings, list[Supervisor]],
) -> None:
    settings, (hub, registry_again) = replicas
    assert hub.state_dir != registry_again.state_dir
    for _ in range(CASES):
        view = asyncio.run(run_demo(settings, progress=lambda _line: None, timeout_s=120))
        assert view.status == "completed"
    assert asyncio.run(_dead_letters(settings)) == 0
    # Both replicas took records of these cases: the consumer groups split the partitions.
    assert _processed(hub) > 0
    assert _processed(registry_again) > 0
    # Neither made a key of its own.
    assert not (Path(hub.state_dir) / "secrets" / "master.key").exists()
    assert not (Path(registry_again.state_dir) / "secrets" / "master.key").exists()
