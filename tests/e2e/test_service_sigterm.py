"""SIGTERM to the registry while relocation cases flow: a clean exit, and after a restart every
case completes exactly once.

The portal publishes cases one after another; when the registry has opened some of them
it gets SIGTERM (``Supervisor.stop_service``), the portal publishes more while it is
down, and the registry is started again. In-flight work finishes and commits at the
stop; what comes meanwhile waits on the topics. Nothing is lost, nothing is done twice: each case is
opened and completed once, each agency receives each delivery once, the citizen gets
each email once, and nothing was dead-lettered.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from contracts import CaseCompleted, MoveReported
from hub.local.demo import PORTAL, demo_person, move_report, new_case_id, relocation_responders
from hub.local.provisioning import local_partner
from hub.local.supervisor import Supervisor
from hub.runtime import topics
from hub.runtime.deadletter import dead_letter_topic
from hub.runtime.topics import delivery_topic
from tests.e2e.support import Hub, answer_deliveries, cancel_all, read_all, supervised_hub
from tests.fixtures.infrastructure import Infrastructure

CASES = 8
BEFORE_STOP = 5  # published one after another; the rest while the registry is down
STOP_AFTER_OPENED = 3  # SIGTERM once the registry has opened this many cases
MAILS_PER_CASE = 5  # received, three agency steps, completed


@dataclass(frozen=True)
class Outcome:
    cases: list[str]
    exit_code: int | None
    opened_while_down: int
    statuses: dict[str, str]
    steps: Counter[tuple[str, str]]  # (case id, registry step) -> how often on the timeline
    deliveries: Counter[tuple[str, str, str]]  # (partner, case id, delivered type) -> records
    mails: Counter[str]  # case id -> emails
    dead_letters: list[ConsumerRecord[bytes, bytes]]  # on hub.ingress-dlt, keyed by these cases
    registry_log: str


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with supervised_hub(infrastructure, tmp_path_factory) as hub:
        yield hub


@pytest.fixture(scope="module")
def outcome(hub: Hub, infrastructure: Infrastructure) -> Outcome:
    return asyncio.run(_scenario(hub, infrastructure))


async def _scenario(hub: Hub, infrastructure: Infrastructure) -> Outcome:
    settings = hub.settings
    cases = [new_case_id() for _ in range(CASES)]
    portal = local_partner(settings, PORTAL)
    responders = relocation_responders("main")
    agencies = [local_partner(settings, partner) for partner in responders]
    conn = await asyncpg.connect(settings.database_dsn())
    tasks: list[asyncio.Task[None]] = []

    async def report_moves(batch: list[str], pause_s: float) -> None:
        for case in batch:
            await portal.publish(move_report(demo_person(200 + cases.index(case))), business_process_id=case)
            await asyncio.sleep(pause_s)

    async def opened(batch: list[str]) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM registry.cases WHERE case_id = ANY($1)", batch))

    try:
        for client in (portal, *agencies):
            await client.start()
        tasks = [asyncio.create_task(answer_deliveries(agency, set(cases))) for agency in agencies]
        reporting = asyncio.create_task(report_moves(cases[:BEFORE_STOP], 0.3))
        async with asyncio.timeout(60):
            while await opened(cases) < STOP_AFTER_OPENED:
                await asyncio.sleep(0.05)
        exit_code = await asyncio.to_thread(hub.supervisor.stop_service, "registry")  # SIGTERM
        await reporting
        await report_moves(cases[BEFORE_STOP:], 0)  # while the registry is down
        await asyncio.sleep(1)
        opened_while_down = await opened(cases[BEFORE_STOP:])
        await asyncio.to_thread(_restart_registry, hub.supervisor)
        await _wait_until_done(conn, cases)
        rows = await conn.fetch("SELECT case_id, status FROM registry.cases WHERE case_id = ANY($1)", cases)
        timeline = await conn.fetch(
            "SELECT case_id, event_type FROM registry.timeline"
            " WHERE service = 'registry' AND case_id = ANY($1)",
            cases,
        )
        deliveries: Counter[tuple[str, str, str]] = Counter()
        for agency in agencies:
            for record in await read_all(settings, delivery_topic(agency.partner_id)):
                case = (record.key or b"").decode()
                if case in cases:
                    delivered = json.loads(record.value or b"{}").get("event_type_delivered", "?")
                    deliveries[(agency.partner_id, case, delivered)] += 1
        dead_letters = [
            r
            for r in await read_all(settings, dead_letter_topic(topics.INGRESS))
            if (r.key or b"").decode() in cases
        ]
    finally:
        await cancel_all(tasks)
        for client in (portal, *agencies):
            await client.stop()
        await conn.close()
    mails = Counter(
        str(m["X-Hub-Case-Id"]) for m in infrastructure.smtp.messages() if m["X-Hub-Case-Id"] in cases
    )
    return Outcome(
        cases=cases,
        exit_code=exit_code,
        opened_while_down=opened_while_down,
        statuses={r["case_id"]: r["status"] for r in rows},
        steps=Counter((r["case_id"], r["event_type"]) for r in timeline),
        deliveries=deliveries,
        mails=mails,
        dead_letters=dead_letters,
        registry_log=(hub.supervisor.state_dir / "logs" / "registry.log").read_text(errors="replace"),
    )


def _restart_registry(supervisor: Supervisor) -> None:
    supervisor.start_service("registry")
    supervisor.wait_until_ready(["registry"])


async def _wait_until_done(conn: asyncpg.Connection, cases: list[str]) -> None:
    """Every case completed and every email of it sent."""
    deadline = time.monotonic() + 150
    while True:
        completed = await conn.fetchval(
            "SELECT count(*) FROM registry.cases WHERE case_id = ANY($1) AND status = 'completed'", cases
        )
        mailed = await conn.fetchval(
            "SELECT count(*) FROM notifications.notifications WHERE case_id = ANY($1)"
            " AND channel = 'email' AND status NOT IN ('created', 'sending')",
            cases,
        )
        if (completed, mailed) == (len(cases), len(cases) * MAILS_PER_CASE):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{completed}/{len(cases)} cases completed, {mailed} emails final")
        await asyncio.sleep(0.3)


def test_sigterm_stops_the_registry_cleanly_while_cases_flow(outcome: Outcome) -> None:
    assert outcome.exit_code == 0
    assert outcome.opened_while_down == 0  # it was really gone: what came meanwhile waited
    assert "registry: stopped" in outcome.registry_log  # its shutdown ran to the end


def test_after_the_restart_every_case_completes_exactly_once(outcome: Outcome) -> None:
    assert outcome.statuses == dict.fromkeys(outcome.cases, "completed")
    for case in outcome.cases:
        assert outcome.steps[(case, "case-opened")] == 1
        assert outcome.steps[(case, CaseCompleted.event_type)] == 1
    assert outcome.mails == Counter(dict.fromkeys(outcome.cases, MAILS_PER_CASE))
    assert outcome.dead_letters == []


def test_each_agency_receives_each_delivery_of_each_case_once(outcome: Outcome) -> None:
    partners = sorted(relocation_responders("main"))
    for partner in partners:
        for case in outcome.cases:
            assert outcome.deliveries[(partner, case, MoveReported.event_type)] == 1, (partner, case)
            assert outcome.deliveries[(partner, case, CaseCompleted.event_type)] == 1, (partner, case)
    assert set(outcome.deliveries.values()) == {1}  # nothing at all delivered twice
