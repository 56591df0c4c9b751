"""Rejection, escalation, a second case type and subscription control, end to end."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from contracts import KRIENS, DepartureConfirmed, Language, SetSubscription
from hub.local.demo import (
    BUILDING_DEPARTMENT,
    BUILDING_INSURANCE,
    ENVIRONMENT_OFFICE,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    PORTAL,
    TAX_OFFICE,
    demo_person,
    move_report,
    run_building_permit_demo,
    run_demo,
)
from hub.local.provisioning import local_partner
from hub.runtime import topics
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure

QUIET = {"progress": lambda _line: None, "timeout_s": 90}


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory) as settings:
        yield settings


async def _values(settings: HubSettings, topic: str, key: str) -> list[dict[str, object]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        group_id=f"inspect-{uuid.uuid4()}",
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
    finally:
        await consumer.stop()
    return [json.loads(r.value) for records in batches.values() for r in records if r.key == key.encode()]


def test_a_partner_asks_the_citizen_to_act_and_the_case_then_completes(
    hub: HubSettings, infrastructure: Infrastructure
) -> None:
    view = asyncio.run(run_demo(hub, variant="action-required", language=Language.FR, **QUIET))  # type: ignore[arg-type]
    assert view.status == "completed"
    lucerne = [step.detail or "" for step in view.timeline if step.service == LUCERNE_OFFICE]
    asked = [n for n, detail in enumerate(lucerne) if detail.startswith("action required: ")]
    assert len(asked) == 1
    assert asked[0] < lucerne.index("arrival-registered")  # asked first, registered after
    mails = [m for m in infrastructure.smtp.messages() if m["X-Hub-Case-Id"] == view.case_id]
    # Long subjects are folded on the wire; compare them with the whitespace normalised.
    action = [m for m in mails if "votre intervention est nécessaire" in " ".join(str(m["Subject"]).split())]
    assert len(action) == 1  # in the citizen's language (French), mandatory, once
    assert "Mietvertrag" in action[0].get_content()
    assert "Stadt Luzern" in action[0].get_content()


def test_rejection_closes_the_case_and_tells_the_citizen_why(
    hub: HubSettings, infrastructure: Infrastructure
) -> None:
    view = asyncio.run(run_demo(hub, variant="rejection", **QUIET))  # type: ignore[arg-type]
    assert view.status == "rejected"
    assert any(step.service == LUCERNE_OFFICE and "rejected" in (step.detail or "") for step in view.timeline)
    mails = [m for m in infrastructure.smtp.messages() if m["X-Hub-Case-Id"] == view.case_id]
    rejection = [m for m in mails if "bewohnbare" in m.get_content()]
    assert len(rejection) == 1  # the reason reached the citizen
    # The other partners learn of the rejection; the rejecting partner is not told its own news.
    tax = asyncio.run(_values(hub, delivery_topic(TAX_OFFICE), view.case_id))
    assert any(d["event_type_delivered"] == "ch.lu.hub.case.rejected.v1" for d in tax)


def test_building_permit_runs_end_to_end_from_contracts_and_a_definition(hub: HubSettings) -> None:
    view = asyncio.run(run_building_permit_demo(hub, **QUIET))  # type: ignore[arg-type]
    assert view.case_type == "building-permit"
    assert view.status == "completed"
    services = {step.service for step in view.timeline}
    assert {ENVIRONMENT_OFFICE, BUILDING_INSURANCE, "identity", "registry", "notifications"} <= services
    environment = asyncio.run(_values(hub, delivery_topic(ENVIRONMENT_OFFICE), view.case_id))
    request = next(d for d in environment if d["event_type_delivered"].endswith("consultation-requested.v1"))
    # The environment office needs the project, not the applicant: only the pseudonym.
    assert set(request["subject"]) >= {"sector_pseudonym"}
    assert request["subject"]["official_name"] is None
    assert "applicant" not in request["data"]
    assert demo_person(2).vn not in json.dumps(environment)
    department = asyncio.run(_values(hub, delivery_topic(BUILDING_DEPARTMENT), view.case_id))
    assert {d["event_type_delivered"] for d in department} >= {
        "ch.lu.hub.building-permit.environment-opinion-given.v1",
        "ch.lu.hub.case.completed.v1",
    }


def test_only_approved_subscriptions_route(hub: HubSettings) -> None:
    """After the tax office's subscription for moves into its canton (its arrival-tax-office
    slot) is revoked, a new move within the canton reaches Kriens but not it."""
    case_id = f"eumzug-{uuid.uuid4()}"

    async def revoke_then_report() -> None:
        operator = local_partner(hub, "CH/CAN/LU/ops")
        portal = local_partner(hub, PORTAL)
        await operator.start()
        await portal.start()
        try:
            await operator.publish(
                SetSubscription(
                    partner_id=TAX_OFFICE,
                    subscribed_event_type="ch.lu.hub.relocation.move-reported.v1",
                    case_type="relocation",
                    purpose="assign the tax domicile",
                    legal_basis="StHG Art. 4",
                    fields=("move_date",),
                    retention_days=30,
                    status="revoked",
                    slot="arrival-tax-office",
                ),
                business_process_id="admin:subscriptions",
                topic=topics.ADMIN,
            )
            await _until(lambda: _subscription_status(hub, TAX_OFFICE), "revoked")
            await portal.publish(move_report(demo_person(3)), business_process_id=case_id)
        finally:
            await operator.stop()
            await portal.stop()

    asyncio.run(revoke_then_report())
    kriens: list[dict[str, object]] = []
    for _ in range(40):
        kriens = asyncio.run(_values(hub, delivery_topic(KRIENS_OFFICE), case_id))
        if kriens:
            break
    assert kriens, "Kriens should still receive the move"
    assert asyncio.run(_values(hub, delivery_topic(TAX_OFFICE), case_id)) == []


async def _subscription_status(settings: HubSettings, partner_id: str) -> str | None:
    import asyncpg

    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return await conn.fetchval(
            "SELECT status FROM registry.subscriptions WHERE partner_id = $1 AND event_type = $2"
            " AND slot = 'arrival-tax-office'",
            partner_id,
            "ch.lu.hub.relocation.move-reported.v1",
        )
    finally:
        await conn.close()


async def _until(probe: Any, expected: object, timeout_s: float = 20) -> None:
    async with asyncio.timeout(timeout_s):
        while await probe() != expected:
            await asyncio.sleep(0.2)


def test_a_partner_role_may_not_send_another_roles_milestone(hub: HubSettings) -> None:
    async def tax_office_confirms_a_departure() -> str:
        client = local_partner(hub, TAX_OFFICE)
        await client.start()
        try:
            envelope = await client.publish(
                DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01"),  # type: ignore[arg-type]
                business_process_id=f"eumzug-{uuid.uuid4()}",
            )
        finally:
            await client.stop()
        return envelope.id

    event_id = asyncio.run(tax_office_confirms_a_departure())
    dead = []
    for _ in range(30):
        dead = asyncio.run(_dead_letters(hub, event_id))
        if dead:
            break
        asyncio.run(asyncio.sleep(0.5))
    assert dead, "the forbidden milestone was not dead-lettered"
    assert "may not publish" in dead[0]


async def _dead_letters(settings: HubSettings, event_id: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(settings.database_dsn())
    try:
        rows = await conn.fetch(
            "SELECT error_message FROM registry.dead_letters WHERE event_id = $1", event_id
        )
    finally:
        await conn.close()
    return [r["error_message"] for r in rows]
