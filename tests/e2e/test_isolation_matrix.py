"""Isolation matrix: every partner receives exactly what its subscriptions allow, minimised,
and nothing else, across all event types of both case types.

Seven partners (portal, two municipalities, tax office, building department, environment
office, building insurance) and every event type the scenarios produce (the opening
events, each agency step, action required, rejection, completion). The expectation is
computed from the registry's subscription table, independently of the routing code;
then one partner is suspended and receives, and may send, nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from contracts import KRIENS, CaseDelivery, DepartureConfirmed, Envelope, parse_data
from hub.cli import main
from hub.demo import (
    BUILDING_DEPARTMENT,
    BUILDING_INSURANCE,
    ENVIRONMENT_OFFICE,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    PORTAL,
    TAX_OFFICE,
    demo_person,
    move_report,
    new_case_id,
    run_building_permit_demo,
    run_demo,
)
from hub.partner import PartnerClient
from hub.settings import HubSettings
from hub.topics import delivery_topic
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure, point_cli_at

PARTNERS = (
    PORTAL,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    TAX_OFFICE,
    BUILDING_DEPARTMENT,
    ENVIRONMENT_OFFICE,
    BUILDING_INSURANCE,
)
QUIET = {"progress": lambda _line: None, "timeout_s": 90}


@dataclass(frozen=True)
class Received:
    partner: str
    case_id: str
    event_id: str
    delivery: CaseDelivery


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory) as settings:
        yield settings


@pytest.fixture(scope="module")
def cases(hub: HubSettings) -> dict[str, str]:
    """Case id -> case type, for every scenario variant."""
    runs = [
        asyncio.run(run_demo(hub, **QUIET)),  # type: ignore[arg-type]
        asyncio.run(run_demo(hub, variant="rejection", **QUIET)),  # type: ignore[arg-type]
        asyncio.run(run_demo(hub, variant="action-required", **QUIET)),  # type: ignore[arg-type]
        asyncio.run(run_building_permit_demo(hub, progress=lambda _line: None)),
    ]
    return {view.case_id: view.case_type for view in runs}


async def _received(settings: HubSettings, case_ids: set[str], partners: tuple[str, ...]) -> list[Received]:
    found: list[Received] = []
    for partner in partners:
        consumer = AIOKafkaConsumer(
            delivery_topic(partner),
            bootstrap_servers=settings.bootstrap_servers(),
            auto_offset_reset="earliest",
            group_id=f"inspect-{uuid.uuid4()}",
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=4000)
        finally:
            await consumer.stop()
        for records in batches.values():
            for record in records:
                envelope = Envelope.from_headers(record.headers)
                if envelope.businessprocessid not in case_ids:
                    continue
                data = parse_data(envelope.type, record.value or b"")
                assert isinstance(data, CaseDelivery), f"{partner} got a {envelope.type}, not a delivery"
                found.append(Received(partner, envelope.businessprocessid or "", envelope.id, data))
    return found


async def _rows(settings: HubSettings, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return [dict(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def _expected(settings: HubSettings, cases: dict[str, str]) -> set[tuple[str, str, str]]:
    """(case, partner, event type) from the subscription table and what happened in each case."""
    subscriptions = asyncio.run(
        _rows(
            settings,
            "SELECT s.partner_id, s.event_type, s.case_type FROM registry.subscriptions s "
            "JOIN registry.partners p USING (partner_id) WHERE s.status = 'approved' AND p.status = 'active'",
        )
    )
    happened = asyncio.run(
        _rows(
            settings,
            "SELECT DISTINCT case_id, service, event_type FROM registry.timeline WHERE case_id = ANY($1)",
            list(cases),
        )
    )
    expected = set()
    for step in happened:
        event_type = step["event_type"]
        if event_type == CaseDelivery.event_type or step["service"] in ("identity", "notifications"):
            continue
        for sub in subscriptions:
            if sub["event_type"] != event_type or sub["case_type"] not in (None, cases[step["case_id"]]):
                continue
            if event_type.endswith("case.rejected.v1") and sub["partner_id"] == step["service"]:
                continue  # the rejecting partner is not told its own news
            expected.add((step["case_id"], sub["partner_id"], event_type))
    return expected


def test_each_partner_receives_exactly_its_subscriptions_once(
    hub: HubSettings, cases: dict[str, str]
) -> None:
    received = asyncio.run(_received(hub, set(cases), PARTNERS))
    actual = [(r.case_id, r.partner, r.delivery.event_type_delivered) for r in received]
    expected = _expected(hub, cases)
    assert len(actual) == len(set(actual))  # nothing twice
    assert set(actual) == expected
    # The matrix spans every event type of both case types, delivered or (unsubscribed) not.
    happened = {
        row["event_type"]
        for row in asyncio.run(
            _rows(
                hub, "SELECT DISTINCT event_type FROM registry.timeline WHERE case_id = ANY($1)", list(cases)
            )
        )
    }
    internal = (CaseDelivery.event_type, ".identity.", ".notification.")
    partner_types = {t for t in happened if t.startswith("ch.lu.hub.") and not any(i in t for i in internal)}
    assert len(partner_types) >= 10
    delivered_types = {event_type for _, _, event_type in expected}
    assert len(delivered_types) >= 6
    assert len({partner for _, partner, _ in expected}) >= 4
    assert not any(t.endswith("action-required.v1") for t in delivered_types)  # nobody subscribed
    assert not any(t.endswith("departure-confirmed.v1") for t in delivered_types)


def test_every_delivery_is_minimised_to_its_subscription(hub: HubSettings, cases: dict[str, str]) -> None:
    received = asyncio.run(_received(hub, set(cases), PARTNERS))
    fields = {
        (row["partner_id"], row["event_type"]): set(row["fields"])
        for row in asyncio.run(
            _rows(hub, "SELECT partner_id, event_type, fields FROM registry.subscriptions")
        )
    }
    vn = demo_person().vn
    assert received
    for item in received:
        granted = fields[(item.partner, item.delivery.event_type_delivered)]
        top_level = {name.split(".")[0] for name in granted}
        assert set(item.delivery.data) <= top_level, (item.partner, item.delivery.event_type_delivered)
        assert item.delivery.recipient == item.partner
        if item.delivery.subject is not None:
            shown = {k for k, v in item.delivery.subject.model_dump().items() if v is not None}
            allowed_person = {name.split(".", 1)[1] for name in granted if "." in name}
            assert shown - {"sector_pseudonym", "local_person_id"} <= allowed_person
        assert vn not in json.dumps(item.delivery.model_dump(mode="json"))


def test_a_suspended_partner_receives_nothing_and_may_send_nothing(
    hub: HubSettings, cases: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_cli_at(hub, monkeypatch, tmp_path)
    assert main(["partner", "suspend", KRIENS_OFFICE, "--reason", "isolation test"]) == 0
    _wait_for(hub, "SELECT status FROM registry.partners WHERE partner_id = $1", KRIENS_OFFICE, "suspended")

    case_id = new_case_id()
    asyncio.run(_publish(hub, PORTAL, move_report(demo_person(7)), case_id))
    confirmation = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    asyncio.run(_publish(hub, KRIENS_OFFICE, confirmation, case_id))
    # The others are served; the suspended partner's confirmation is refused and recorded.
    _wait_for(
        hub,
        "SELECT count(*)::text FROM registry.dead_letters WHERE event_type = $1 AND error_message LIKE $2",
        DepartureConfirmed.event_type,
        "1",
        extra=f"%{KRIENS_OFFICE} is suspended%",
    )
    received = asyncio.run(_received(hub, {case_id}, (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)))
    receivers = {r.partner for r in received}
    assert receivers == {LUCERNE_OFFICE, TAX_OFFICE}
    milestones = asyncio.run(
        _rows(hub, "SELECT milestone FROM registry.case_milestones WHERE case_id = $1", case_id)
    )
    assert milestones == []


async def _publish(settings: HubSettings, partner: str, event: Any, case_id: str) -> None:
    client = PartnerClient(
        settings.bootstrap_servers(), partner, idempotence=settings.kafka_enable_idempotence
    )
    await client.start()
    try:
        await client.publish(event, business_process_id=case_id)
    finally:
        await client.stop()


def _wait_for(settings: HubSettings, sql: str, arg: str, wanted: str, *, extra: str | None = None) -> None:
    args = (arg, extra) if extra is not None else (arg,)
    deadline = time.monotonic() + 60
    value = None
    while time.monotonic() < deadline:
        rows = asyncio.run(_rows(settings, sql, *args))
        value = next(iter(rows[0].values())) if rows else None
        if value == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"waited for {wanted!r}, last saw {value!r}")
