"""A partner registered while the hub runs: its topics, its subscription, its first delivery,
its first event.

No restart and no migration: `hub partner register` and `hub subscription set` travel as
commands on hub.admin; identity announces the partner, the registry mirrors it and
creates its delivery and ingress topics; the next relocation case reaches it (it is no
party to it, so its subscription spans all cases), minimised, under its own sector's
pseudonym. Its first event, published on its new ingress topic,
is read by the registry's pattern subscription, which picks the topic up while running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from contracts import CaseDelivery, Envelope, MoveReported, parse_data
from hub.cli.main import main
from hub.local.demo import demo_person, move_report, new_case_id, run_demo
from hub.local.partner_client import PartnerClient
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic, ingress_topic
from hub.security.key_files import public_pem
from hub.security.signing import SigningKey
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure, point_cli_at

STATISTICS = "CH/CAN/LU/lustat-runtime"


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory) as settings:
        yield settings


@pytest.fixture
def hub_env(hub: HubSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubSettings:
    point_cli_at(hub, monkeypatch, tmp_path)
    return hub


def test_a_partner_registered_at_runtime_gets_its_topics_its_first_delivery_and_sends_its_first_event(
    hub_env: HubSettings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    register = [
        *("partner", "register", "--id", STATISTICS, "--name", "LUSTAT Statistik Luzern"),
        # The portal role lets it open a case: its own first event shows its ingress is read.
        *("--sector", "statistics", "--role", "statistics", "--role", "portal", "--canton", "LU"),
    ]
    assert main(register) == 0
    subscribe = [
        *("subscription", "set", STATISTICS, MoveReported.event_type, "--case-type", "relocation"),
        *("--purpose", "migration statistics", "--legal-basis", "StatG LU § 5"),
        *("--field", "arrival", "--field", "move_date", "--retention-days", "30", "--status", "approved"),
        # Statistics concern every move, not moves it is a party to: the scope says so.
        *("--scope", "all-cases"),
    ]
    assert main(subscribe) == 0
    asyncio.run(_wait_for_routing(hub_env))
    assert {delivery_topic(STATISTICS), ingress_topic(STATISTICS)} <= asyncio.run(_topics(hub_env))
    capsys.readouterr()
    # The operator derives the new partner's Kafka ACLs from the register.
    assert main(["acls", "--bootstrap", "kafka:9093"]) == 0
    lines = capsys.readouterr().out.splitlines()
    mine = [line for line in lines if "User:partner.ch.can.lu.lustat-runtime'" in line]
    assert len(mine) == 5
    assert any(f"--operation Read --topic '{delivery_topic(STATISTICS)}'" in line for line in mine)
    writes = [line for line in mine if "--operation Write" in line]
    assert len(writes) == 1
    assert f"--topic '{ingress_topic(STATISTICS)}' --resource-pattern-type literal" in writes[0]
    assert not any("einwohnerdienste" in line for line in mine)

    case = asyncio.run(run_demo(hub_env, progress=lambda _line: None, timeout_s=90))
    delivery = asyncio.run(_first_delivery(hub_env, case.case_id))
    assert delivery.event_type_delivered == MoveReported.event_type
    assert set(delivery.data) == {"arrival", "move_date"}  # nothing its subscription does not name
    assert delivery.subject is not None
    assert delivery.subject.sector_pseudonym.startswith("statistics:")
    assert demo_person().vn not in delivery.model_dump_json()
    basis = asyncio.run(
        _fetch(
            hub_env,
            "SELECT basis FROM registry.audit_log WHERE case_id = $1 AND partner_id = $2",
            case.case_id,
            STATISTICS,
        )
    )
    assert basis == "all-cases"  # recorded as the ground it received the move on

    # Its first own event, on its new ingress topic: the registry had been reading by pattern
    # since long before the topic was created, and picks it up while running.
    key = SigningKey.generate("lustat-runtime-2026")
    (tmp_path / "lustat.pub").write_text(public_pem(key.public.key))
    add_key = ["partner", "key", "add", "--partner", STATISTICS, "--key-id", key.key_id]
    assert main([*add_key, "--public-key", str(tmp_path / "lustat.pub")]) == 0
    asyncio.run(_until(hub_env, "SELECT count(*) FROM registry.partner_keys WHERE key_id = $1", key.key_id))
    case_id = new_case_id()
    envelope = asyncio.run(_publish(hub_env, key, case_id))
    asyncio.run(_until(hub_env, "SELECT count(*) FROM registry.cases WHERE case_id = $1", case_id))
    reported = asyncio.run(
        _fetch(hub_env, "SELECT reported_event_id FROM registry.cases WHERE case_id = $1", case_id)
    )
    assert reported == envelope.id  # the case it opened, from its own topic


async def _publish(settings: HubSettings, key: SigningKey, case_id: str) -> Envelope:
    client = PartnerClient(
        settings.bootstrap_servers(),
        STATISTICS,
        idempotence=settings.kafka_enable_idempotence,
        signing_key=key,
    )
    await client.start()
    try:
        return await client.publish(move_report(demo_person(61)), business_process_id=case_id)
    finally:
        await client.stop()


async def _fetch(settings: HubSettings, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _until(settings: HubSettings, sql: str, *args: object, timeout_s: float = 60) -> None:
    """Until ``sql`` counts at least one row."""
    deadline = time.monotonic() + timeout_s
    while not await _fetch(settings, sql, *args):
        assert time.monotonic() < deadline, f"timed out: {sql} {args}"
        await asyncio.sleep(0.3)


async def _wait_for_routing(settings: HubSettings) -> None:
    """Identity announced the partner and the registry holds it and its approved subscription."""
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            routed = await conn.fetchval(
                "SELECT count(*) FROM registry.partners p JOIN registry.subscriptions s USING (partner_id)"
                " WHERE p.partner_id = $1 AND p.status = 'active' AND s.status = 'approved'",
                STATISTICS,
            )
            if routed:
                return
            await asyncio.sleep(0.3)
        raise AssertionError("the registry never learnt the new partner and its subscription")
    finally:
        await conn.close()


async def _topics(settings: HubSettings) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _first_delivery(settings: HubSettings, case_id: str) -> CaseDelivery:
    consumer = AIOKafkaConsumer(
        delivery_topic(STATISTICS),
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            async for record in consumer:
                envelope = Envelope.from_headers(record.headers)
                if envelope.businessprocessid == case_id:
                    data = parse_data(envelope.type, record.value or b"")
                    assert isinstance(data, CaseDelivery)
                    return data
    finally:
        await consumer.stop()
    raise AssertionError("no delivery")
