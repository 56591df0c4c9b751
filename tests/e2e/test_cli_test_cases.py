"""The operator's CLI on a running hub: a test case opened with `hub case open --test`, and
admin commands that wait for their answer (`--wait --json`).

The test case is opened with the operator key alone; the demo agencies (Kriens, Lucerne, the
cantonal tax office) receive it flagged as a test delivery, answer it as a real case, and it
completes; the citizen's notices are simulated, never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hub.cli.exit_codes import ExitCode
from hub.cli.main import main
from hub.local.demo import (
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    PORTAL,
    demo_person,
    move_report,
    relocation_responders,
)
from hub.local.partner_client import Delivery, PartnerClient, RefusedDelivery
from hub.local.provisioning import local_keyring, local_partner
from hub.runtime.settings import HubSettings
from tests.e2e.support import Hub, cancel_all, supervised_hub
from tests.fixtures.infrastructure import Infrastructure, point_cli_at

MOVE = "ch.lu.hub.relocation.move-reported.v1"


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with supervised_hub(infrastructure, tmp_path_factory) as hub, pytest.MonkeyPatch.context() as patch:
        # The operator's shell: HUB_* settings of this hub, commands signed with its operator key.
        point_cli_at(hub.settings, patch, hub.settings.state_dir)
        yield hub


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


async def cli(*args: str) -> tuple[int, str]:
    """A `hub` command as an operator runs it (in a thread: it runs an event loop of its own)."""
    return await asyncio.to_thread(_cli, *args)


def _skip(_refused: RefusedDelivery) -> None:
    """The session's broker holds deliveries of other modules' hubs, signed with other keys."""


async def _agency(client: PartnerClient, case_id: str, received: list[Delivery]) -> None:
    """A partner's system: records what it receives of ``case_id`` and answers it as the demo's
    agencies answer a real move, flagged as a test like the delivery it answers."""
    respond = relocation_responders("main")[client.partner_id]
    async for delivery in client.deliveries(
        on_refused=_skip, session_timeout_ms=6000, heartbeat_interval_ms=1000
    ):
        if delivery.envelope.businessprocessid != case_id:
            continue
        received.append(delivery)
        for answer in respond(delivery):
            await client.publish(
                answer,
                business_process_id=case_id,
                reference_id=delivery.envelope.id,
                test_delivery=delivery.envelope.testdelivery,
            )


async def _until(conn: asyncpg.Connection, sql: str, *args: Any, timeout_s: float = 90) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (value := await conn.fetchval(sql, *args)) is None:
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {sql} {args}"
        await asyncio.sleep(0.3)
    return value


async def _open_and_answer(settings: HubSettings, data_file: Path, case_id: str) -> dict[str, Any]:
    keyring = local_keyring(settings)
    agencies = [local_partner(settings, pid, keyring=keyring) for pid in relocation_responders("main")]
    received: dict[str, list[Delivery]] = {client.partner_id: [] for client in agencies}
    conn = await asyncpg.connect(settings.database_dsn())
    tasks: list[asyncio.Task[None]] = []
    try:
        for client in agencies:
            await client.start()
        tasks = [asyncio.create_task(_agency(c, case_id, received[c.partner_id])) for c in agencies]
        code, out = await cli(
            *("case", "open", "--test", "relocation", "--data", str(data_file), "--case-id", case_id),
            *("--wait", "--json"),
        )
        status = await _until(
            conn, "SELECT status FROM registry.cases WHERE case_id = $1 AND status = 'completed'", case_id
        )
        # The citizen's notice of completion got its (simulated) delivery status.
        await _until(
            conn,
            "SELECT detail FROM registry.timeline WHERE case_id = $1 AND service = 'notifications' "
            "AND detail LIKE '%.completed via email:%'",
            case_id,
        )
        case = await conn.fetchrow("SELECT test_delivery FROM registry.cases WHERE case_id = $1", case_id)
        timeline = await conn.fetch(
            "SELECT service, event_type, detail FROM registry.timeline WHERE case_id = $1 ORDER BY time, id",
            case_id,
        )
        notifications = await conn.fetch(
            "SELECT channel, test_delivery, status, last_error FROM notifications.notifications "
            "WHERE case_id = $1",
            case_id,
        )
        parties = await conn.fetch(
            "SELECT slot, partner_id FROM registry.case_parties WHERE case_id = $1", case_id
        )
    finally:
        await cancel_all(tasks)
        for client in agencies:
            await client.stop()
        await conn.close()
    return {
        "code": code,
        "out": out,
        "status": status,
        "test_delivery": case["test_delivery"],
        "timeline": [dict(row) for row in timeline],
        "notifications": [dict(row) for row in notifications],
        "parties": {row["slot"]: row["partner_id"] for row in parties},
        "received": received,
    }


@pytest.fixture(scope="module")
def test_case(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data_file = tmp_path_factory.mktemp("case") / "move.json"
    data_file.write_text(move_report(demo_person(41)).model_dump_json(), encoding="utf-8")
    return asyncio.run(_open_and_answer(hub.settings, data_file, f"test-relocation-{uuid.uuid4()}"))


def test_the_operator_opens_a_test_case_without_a_partner_key_and_waits_for_it(
    test_case: dict[str, Any],
) -> None:
    assert test_case["code"] == ExitCode.OK, test_case["out"]
    answer = json.loads(test_case["out"])
    assert answer["outcome"] == "accepted"
    assert answer["service"] == "registry"
    assert answer["event_type"] == MOVE
    assert answer["case_id"].startswith("test-relocation-")


def test_the_parties_receive_it_flagged_as_a_test_and_their_answers_complete_it(
    test_case: dict[str, Any],
) -> None:
    received = test_case["received"]
    assert {pid for pid, deliveries in received.items() if deliveries} == set(relocation_responders("main"))
    assert all(d.envelope.testdelivery for deliveries in received.values() for d in deliveries)
    assert test_case["status"] == "completed"
    assert test_case["test_delivery"] is True


def test_the_case_says_an_operator_opened_it_as_a_test_and_the_portal_fills_its_opener_slot(
    test_case: dict[str, Any],
) -> None:
    opened = [step for step in test_case["timeline"] if step["event_type"] == "test-case-opened"]
    assert len(opened) == 1
    assert "by an operator (operator-" in opened[0]["detail"]
    assert test_case["parties"]["opener"] == PORTAL
    assert test_case["parties"]["departure-municipality"] == KRIENS_OFFICE
    assert test_case["parties"]["arrival-municipality"] == LUCERNE_OFFICE


def test_the_citizens_notices_of_a_test_case_are_simulated_not_sent(test_case: dict[str, Any]) -> None:
    emails = [n for n in test_case["notifications"] if n["channel"] == "email"]
    assert emails
    for email in emails:
        assert email["test_delivery"] is True
        # The dispatcher marks a test delivery to a citizen delivered without sending it.
        assert (email["status"], email["last_error"]) == ("delivered", "test delivery: nothing sent")


def test_an_admin_command_waits_until_it_is_applied(hub: Hub) -> None:
    code, out = _cli(
        *("partner", "register", "--id", "CH/MUN/1063/einwohnerdienste", "--name", "Gemeinde Meggen"),
        *(
            "--sector",
            "resident-registration",
            "--role",
            "municipality",
            "--municipality",
            "1063",
            "--canton",
            "LU",
        ),
        *("--wait", "--json"),
    )
    assert code == ExitCode.OK, out
    answer = json.loads(out)
    assert (answer["outcome"], answer["service"], answer["reason"]) == ("accepted", "identity", None)
    listed = json.loads(_cli("partner", "list", "--json")[1])
    assert "CH/MUN/1063/einwohnerdienste" in {row["partner_id"] for row in listed}


def test_a_refused_admin_command_reports_the_reason_and_exits_3(hub: Hub) -> None:
    code, out = _cli(
        *("subscription", "set", KRIENS_OFFICE, MOVE, "--case-type", "relocation", "--slot", "no-such-slot"),
        *("--purpose", "test", "--legal-basis", "none", "--wait", "--json"),
    )
    assert code == ExitCode.REFUSED, out
    answer = json.loads(out)
    assert answer["outcome"] == "refused"
    assert answer["service"] == "registry"
    assert "UnknownSlot" in answer["reason"]
    assert "no-such-slot" in answer["reason"]


def test_a_refused_admin_command_is_one_line_of_text_without_json(hub: Hub) -> None:
    code, out = _cli(
        *("subscription", "set", KRIENS_OFFICE, MOVE, "--case-type", "relocation", "--slot", "nowhere"),
        *("--purpose", "test", "--legal-basis", "none", "--wait"),
    )
    assert code == ExitCode.REFUSED
    assert out.count("\n") == 1
    assert out.startswith("refused by registry: ch.lu.hub.admin.set-subscription.v1 ")
    assert "nowhere" in out
