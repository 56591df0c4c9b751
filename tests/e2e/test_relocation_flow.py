"""The relocation case through identity, registry and notifications, each its own process."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from hub.cli.casefile import CaseView
from hub.local.demo import KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE, demo_person, run_demo
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure


@pytest.fixture(scope="module")
def traces_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traces") / "traces.jsonl"


@pytest.fixture(scope="module")
def hub(
    infrastructure: Infrastructure, traces_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubSettings]:
    """The three services as processes, started once for this module's tests."""
    with running_hub(
        infrastructure,
        tmp_path_factory,
        # DEBUG: the personal-data scan below should see everything the hub's code logs.
        {"HUB_TRACES_EXPORTER": "jsonl", "HUB_TRACES_FILE": str(traces_file), "HUB_LOG_LEVEL": "DEBUG"},
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
def completed_case(hub: HubSettings) -> CaseView:
    return asyncio.run(run_demo(hub, progress=lambda _line: None, timeout_s=90))


def _all_spans(traces_file: Path) -> list[dict[str, Any]]:
    lines = traces_file.read_text().splitlines() if traces_file.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def _spans(traces_file: Path, trace_id: str) -> list[dict[str, object]]:
    lines = traces_file.read_text().splitlines() if traces_file.exists() else []
    return [span for span in map(json.loads, lines) if span["trace_id"] == trace_id]


def _wait_for_spans(traces_file: Path, trace_id: str, services: set[str]) -> list[dict[str, object]]:
    """Services export in batches every 0.5 s; wait until each one's spans are in."""
    deadline = time.monotonic() + 15
    while True:
        spans = _spans(traces_file, trace_id)
        if services <= {s["service"] for s in spans} or time.monotonic() > deadline:
            return spans
        time.sleep(0.2)


async def _delivered(settings: HubSettings, partner: str, case_id: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        delivery_topic(partner),
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        group_id=f"inspect-{uuid.uuid4()}",
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        for records in (await consumer.getmany(timeout_ms=3000)).values():
            found += [r.value for r in records if r.key == case_id.encode()]
    finally:
        await consumer.stop()
    return found


def test_case_completes_with_steps_of_every_service_under_one_trace(completed_case: CaseView) -> None:
    view = completed_case
    assert view.status == "completed"
    services = {step.service for step in view.timeline}
    assert {"registry", "identity", "notifications", KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE} <= services
    assert {step.trace_id for step in view.timeline} == {view.trace_id}


def test_every_service_process_exported_spans_of_that_trace(
    completed_case: CaseView, hub: HubSettings, traces_file: Path
) -> None:
    spans = _wait_for_spans(traces_file, completed_case.trace_id, {"registry", "identity", "notifications"})
    by_service: dict[object, list[dict[str, object]]] = {}
    for span in spans:
        by_service.setdefault(span["service"], []).append(span)
    assert {"registry", "identity", "notifications"} <= set(by_service)
    process = [s for s in spans if str(s["name"]).startswith("process ") and s["kind"] == "CONSUMER"]
    assert process, "consumer spans expected"
    for span in process:
        attributes = span["attributes"]
        assert isinstance(attributes, dict)
        assert attributes["messaging.system"] == "kafka"
        assert attributes["messaging.consumer.group.name"].startswith("hub.")
        assert attributes["messaging.message.id"] == attributes["cloudevents.event_id"]
        assert attributes["hub.case_id"] == completed_case.case_id
        assert "messaging.kafka.offset" in attributes
    assert any(str(s["name"]).startswith("send ") and s["kind"] == "PRODUCER" for s in spans)
    # A statement is no span of its own unless HUB_TRACE_DATABASE asks for it: a record's
    # process span covers its handler's statements.
    assert not any(isinstance(s["attributes"], dict) and s["attributes"].get("db.system") for s in spans)
    # Each batch a subscriber took has a receive span of its own, linked to its records.
    process_ids = {span["span_id"] for span in process}
    receives = [
        span
        for span in _all_spans(traces_file)
        if str(span["name"]).startswith("receive ") and span["kind"] == "CONSUMER"
    ]
    linked = {link["span_id"] for span in receives for link in span["links"]}
    assert receives, "batch receive spans expected"
    assert all(span["trace_id"] != completed_case.trace_id for span in receives)
    assert any(link["trace_id"] == completed_case.trace_id for span in receives for link in span["links"]), (
        "a receive span links to the case's trace"
    )
    assert process_ids.isdisjoint(linked)  # links point at the producers' spans, not at a process span


def test_partners_receive_sector_pseudonyms_and_never_the_ahvn13(
    completed_case: CaseView, hub: HubSettings
) -> None:
    vn = demo_person().vn
    pseudonyms = {}
    for partner in (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE):
        deliveries = asyncio.run(_delivered(hub, partner, completed_case.case_id))
        assert deliveries, f"{partner} received nothing"
        for value in deliveries:
            assert vn.encode() not in value
        move = next(json.loads(v) for v in deliveries if b"sector_pseudonym" in v)
        pseudonyms[partner] = move["subject"]["sector_pseudonym"]
        if partner == TAX_OFFICE:  # minimised to its subscription: no old address, no sex
            assert "previous_address" not in move["data"]
            assert move["subject"]["sex"] is None
    # Both municipalities are in the resident-registration sector; the tax office is not.
    assert pseudonyms[KRIENS_OFFICE] == pseudonyms[LUCERNE_OFFICE]
    assert pseudonyms[TAX_OFFICE] != pseudonyms[KRIENS_OFFICE]


def test_citizen_is_emailed_at_every_milestone_in_their_language(
    completed_case: CaseView, infrastructure: Infrastructure
) -> None:
    mails = [m for m in infrastructure.smtp.messages() if m["X-Hub-Case-Id"] == completed_case.case_id]
    assert len(mails) == 5  # received, three agency steps, completed: each exactly once
    subjects = [str(m["Subject"]) for m in mails]
    assert sum("eingegangen" in s for s in subjects) == 1
    assert sum("abgeschlossen" in s for s in subjects) == 1
    assert sum("Fortschritt" in s for s in subjects) == 3
    assert {m["Content-Language"] for m in mails} == {"de"}


def test_the_citizen_is_known_by_a_citizen_pseudonym_and_their_opt_out_applies_to_the_next_case(
    hub: HubSettings, completed_case: CaseView, infrastructure: Infrastructure
) -> None:
    """Identity hands the registry a citizen-services pseudonym (never the AHVN13); the
    citizen's inbox and preferences are keyed by it, so an opt-out holds in every case."""

    async def scenario() -> tuple[set[str | None], int, CaseView, dict[str, str]]:
        conn = await asyncpg.connect(hub.database_dsn())
        try:
            ids = {
                row["citizen_id"]
                for row in await conn.fetch(
                    "SELECT citizen_id FROM notifications.notifications WHERE case_id = $1",
                    completed_case.case_id,
                )
            }
            citizen_id = next(iter(ids))
            inbox = await conn.fetchval(
                "SELECT count(*) FROM notifications.inbox_messages WHERE citizen_id = $1 AND case_id = $2",
                citizen_id,
                completed_case.case_id,
            )
            await conn.execute(
                "INSERT INTO notifications.citizen_preferences (citizen_id, opted_out) VALUES ($1, true)",
                citizen_id,
            )
            second = await run_demo(hub, progress=lambda _line: None, timeout_s=90)
            await _wait_until_final(conn, second.case_id, expected=5)
            statuses = {
                row["template"]: row["status"]
                for row in await conn.fetch(
                    "SELECT template, status FROM notifications.notifications"
                    " WHERE case_id = $1 AND channel = 'email'",
                    second.case_id,
                )
            }
            return ids, int(inbox), second, statuses
        finally:
            await conn.close()

    ids, inbox, second, statuses = asyncio.run(scenario())
    assert len(ids) == 1
    citizen_id = next(iter(ids))
    assert citizen_id is not None
    assert citizen_id.startswith("citizen-services:")
    assert demo_person().vn not in citizen_id
    assert inbox == 5  # a copy of every notice of the first case
    # Opted out: the agency steps are refused, receipt and completion (mandatory) are sent.
    assert statuses["relocation.received"] == "delivered"
    assert statuses["relocation.completed"] == "delivered"
    steps = {t: s for t, s in statuses.items() if t not in ("relocation.received", "relocation.completed")}
    assert len(steps) == 3
    assert set(steps.values()) == {"permanent-failure"}
    mails = [m for m in infrastructure.smtp.messages() if m["X-Hub-Case-Id"] == second.case_id]
    assert len(mails) == 2


async def _wait_until_final(conn: asyncpg.Connection, case_id: str, *, expected: int) -> None:
    """Every email notice of the case has left 'created'/'sending'."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        final = await conn.fetchval(
            "SELECT count(*) FROM notifications.notifications WHERE case_id = $1 AND channel = 'email'"
            " AND status NOT IN ('created', 'sending')",
            case_id,
        )
        if final == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"notices of {case_id} did not all reach a final status")


def test_no_log_line_and_no_span_carries_the_citizens_personal_data(
    hub: HubSettings, completed_case: CaseView, traces_file: Path
) -> None:
    """AHVN13, names, birth date, email and addresses of the test person appear nowhere in
    what the services logged or exported as spans (attributes, events, resource)."""
    person = demo_person()
    vn = person.vn
    dotted = f"{vn[:3]}.{vn[3:7]}.{vn[7:11]}.{vn[11:]}"
    born = person.date_of_birth
    forbidden = {
        "AHVN13": re.compile(rf"{vn}|{re.escape(dotted)}"),
        "name": re.compile(rf"\b({person.official_name}|{person.first_name})\b"),
        "birth date": re.compile(rf"{born.isoformat()}|{born:%d.%m.%Y}"),
        "email": re.compile(r"anna\.muster@example\.ch", re.IGNORECASE),
        "address": re.compile(r"Hertensteinstrasse|Schachenstrasse"),
    }
    logs = sorted((hub.state_dir / "logs").glob("*.log"))
    assert {path.stem for path in logs} >= {"identity", "registry", "notifications"}
    sources = {str(path): path.read_text(errors="replace").splitlines() for path in logs}
    sources["spans"] = traces_file.read_text().splitlines()
    assert len(sources["spans"]) > 50  # the scan looked at a real run, not at nothing
    assert sum(len(lines) for name, lines in sources.items() if name != "spans") > 20
    found = [
        f"{what} in {name}: {line[:160]}"
        for name, lines in sources.items()
        for line in lines
        for what, pattern in forbidden.items()
        if pattern.search(line)
    ]
    assert found == []
