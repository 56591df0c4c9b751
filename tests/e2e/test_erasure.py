"""Crypto-shredding with the services as processes: `hub person erase` after two relocation cases.

Two citizens move; the operator erases one of them by AHVN13 (``hub.cli.main.main`` with the
hub's HUB_DATABASE_URL and HUB_STATE_DIR, as in a shell). That citizen's case details,
notifications, inbox and identity record are unreadable afterwards, the other's are
intact, and the hub goes on: the erased citizen can even move again, as a new person.
A third citizen's move is rejected by Lucerne: once she is erased, the reason is nowhere
in the database, `hub case show` says it is erased, and her channel preference is gone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import asyncpg
import pytest

from contracts import Contact, MoveReported, Person
from hub.cli.casefile import CaseView
from hub.cli.main import main
from hub.local.demo import PORTAL, demo_person, move_report, new_case_id, relocation_responders, run_case
from hub.runtime.settings import HubSettings
from hub.vault.crypto import ERASED_TEXT, Erased
from hub.vault.master import load_master_key
from services.identity.adapters.postgres import PostgresRepositories as IdentityRepositories
from services.notifications.adapters.postgres import PostgresRepositories
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure
from tests.fixtures.registry import registry_unit_of_work
from tests.integration.vault.scan import hits, readable_rows


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory) as settings:
        yield settings


def _report(serial: int, official_name: str, first_name: str, email: str) -> MoveReported:
    person = demo_person(serial).model_copy(
        update={
            "official_name": official_name,
            "first_name": first_name,
            "date_of_birth": dt.date(1975, 8, 9),
        }
    )
    return move_report(person).model_copy(update={"contact": Contact(email=email)})


ANNA = _report(61, "Zumbühl", "Annegret", "annegret.zumbuehl@example.ch")
BRUNO = _report(62, "Birrer", "Balthasar", "balthasar.birrer@example.ch")


CARLA = _report(63, "Cavelti", "Cordula", "cordula.cavelti@example.ch")
REJECTION_REASON = "Die neue Adresse ist keine bewohnbare Wohnung."  # Lucerne's, in hub/local/demo.py


def _relocate(settings: HubSettings, report: MoveReported, variant: str = "main") -> CaseView:
    expected = "rejected" if variant == "rejection" else "completed"
    view = asyncio.run(
        run_case(
            settings,
            opener=PORTAL,
            opening=report,
            case_id=new_case_id(),
            responders=relocation_responders(variant),
            expected=expected,
            progress=lambda _line: None,
            timeout_s=90,
        )
    )
    assert view.status == expected
    return view


@pytest.fixture(scope="module")
def two_cases(hub: HubSettings) -> tuple[CaseView, CaseView]:
    return _relocate(hub, ANNA), _relocate(hub, BRUNO)


@pytest.fixture
def operator(hub: HubSettings, monkeypatch: pytest.MonkeyPatch) -> HubSettings:
    """The shell of an operator: the hub's database and state dir, where the services keep
    the master key the commands load."""
    monkeypatch.delenv("HUB_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("HUB_DATABASE_URL", hub.database_dsn())
    monkeypatch.setenv("HUB_STATE_DIR", str(hub.state_dir))
    return hub


def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_erasing_one_citizen_leaves_nothing_of_theirs_readable_and_the_other_intact(
    two_cases: tuple[CaseView, CaseView], operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, bruno = two_cases
    stored = asyncio.run(_stored(operator, anna.case_id, bruno.case_id))
    assert stored["outbox"][anna.case_id] > 0  # published copies exist before the erasure

    code, out, err = _hub(capsys, "person", "erase", "--ahvn13", ANNA.person.vn, "--json")

    assert code == 0, err
    erasure = json.loads(out)
    assert erasure["persons"] == 1
    assert erasure["cases"] == [anna.case_id]
    assert erasure["outbox_rows"] >= stored["outbox"][anna.case_id]
    assert ANNA.person.vn not in out

    after = asyncio.run(_stored(operator, anna.case_id, bruno.case_id))
    # Anna: the case keeps only its public and internal fields, every notice and inbox copy and
    # the identity record read as erased, and her cases' published copies are gone.
    assert after["case"][anna.case_id]["erased"] is True
    assert after["case"][anna.case_id]["details"]["arrival"]["bfs_number"] == 1061
    assert "official_name" not in json.dumps(after["case"][anna.case_id]["details"])
    assert after["notices"][anna.case_id]
    assert all(
        item["recipient"] == ERASED_TEXT and item["unreadable"] == "erased"
        for item in after["notices"][anna.case_id]
    )
    assert after["inbox"][anna.case_id]
    assert all(message.erased for message in after["inbox"][anna.case_id])
    assert isinstance(after["person"][anna.case_id], Erased)
    assert after["outbox"][anna.case_id] == 0
    # Bruno: everything as it was.
    assert after["case"][bruno.case_id]["erased"] is False
    assert after["case"][bruno.case_id]["details"]["person"]["first_name"] == "Balthasar"
    assert {item["recipient"] for item in after["notices"][bruno.case_id]} >= {BRUNO.contact.email}
    assert all("Balthasar" in message.body for message in after["inbox"][bruno.case_id])
    assert after["person"][bruno.case_id]["official_name"] == "Birrer"
    assert after["outbox"][bruno.case_id] == stored["outbox"][bruno.case_id]

    code, out, _ = _hub(capsys, "case", "show", anna.case_id, "--json")
    assert code == 0
    assert json.loads(out)["personal_data"] == "erased"
    assert json.loads(out)["status"] == "completed"
    code, out, _ = _hub(capsys, "case", "show", bruno.case_id)
    assert code == 0
    assert "personal data sealed" in out

    code, _, err = _hub(capsys, "person", "erase", "--ahvn13", ANNA.person.vn)
    assert code == 1
    assert err.startswith("hub: error: no such person")


def test_the_hub_goes_on_and_an_erased_citizen_comes_back_as_a_new_person(
    two_cases: tuple[CaseView, CaseView], operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    anna, _bruno = two_cases
    citizen_id = asyncio.run(_citizen_id(operator, anna.case_id))
    # By citizen id this time; if the test above ran, she is erased already and nothing is left.
    code, _, err = _hub(capsys, "person", "erase", "--citizen-id", citizen_id)
    assert code == 0 or err.startswith("hub: error: no such person"), err
    code, _, err = _hub(capsys, "person", "erase", "--citizen-id", citizen_id)
    assert code == 1, "erased twice"

    again = _relocate(operator, ANNA)

    after = asyncio.run(_stored(operator, again.case_id, anna.case_id))
    assert after["case"][again.case_id]["erased"] is False
    assert after["case"][again.case_id]["details"]["person"]["first_name"] == "Annegret"
    assert after["person"][again.case_id]["vn"] == ANNA.person.vn
    assert after["case"][anna.case_id]["erased"] is True  # the old case stays erased


def test_an_invalid_ahvn13_is_refused_without_repeating_it(
    operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _hub(capsys, "person", "erase", "--ahvn13", "7561234567890")
    assert code == 1
    assert "check digit" in err
    assert "7561234567890" not in err


def test_a_rejection_reason_and_the_preferences_of_an_erased_citizen_are_gone(
    two_cases: tuple[CaseView, CaseView], operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    _anna, bruno = two_cases
    carla = _relocate(operator, CARLA, "rejection")
    reason = REJECTION_REASON
    assert f"rejected: {reason}" in _details(carla)  # the demo's reader opens the sealed text
    citizen_ids = {view.case_id: asyncio.run(_citizen_id(operator, view.case_id)) for view in (carla, bruno)}
    for citizen_id in citizen_ids.values():
        code, _, err = _hub(capsys, "notifications", "prefer", citizen_id, "--channel", "inbox")
        assert code == 0, err
    stored = asyncio.run(_raw(operator))
    # The reason reached the database only sealed; the clear copies are the published events.
    assert {name for name, _ in hits(stored, [reason])} == {'"registry"."outbox"'}

    code, out, err = _hub(capsys, "person", "erase", "--ahvn13", CARLA.person.vn, "--json")

    assert code == 0, err
    erasure = json.loads(out)
    assert erasure["cases"] == [carla.case_id]
    assert erasure["citizen_preferences"] == 1
    stores = {(s["store"], s["done"]): s["rows"] for s in erasure["stores"]}
    assert stores[("registry.timeline", "unreadable (sealed under a destroyed key)")] == 1
    assert stores[("notifications.citizen_preferences", "deleted")] == 1
    assert stores[("vault.data_keys", "destroyed")] >= 1
    assert [s["done"] for s in erasure["stores"] if s["store"] == "kafka"] == [
        f"not reachable record by record: topics the hub creates expire records after "
        f"{operator.kafka_retention_hours:g} h (HUB_KAFKA_RETENTION_HOURS)"
    ]
    assert hits(asyncio.run(_raw(operator)), [reason, CARLA.person.first_name, CARLA.contact.email]) == []
    code, out, _ = _hub(capsys, "case", "show", carla.case_id, "--json")
    assert code == 0
    shown = [step["detail"] for step in json.loads(out)["timeline"]]
    assert f"rejected: {ERASED_TEXT}" in shown
    assert not any(reason in (detail or "") for detail in shown)
    assert asyncio.run(_preferences(operator)) == {citizen_ids[bruno.case_id]}


def _details(view: CaseView) -> list[str]:
    return [step.detail or "" for step in view.timeline]


async def _raw(settings: HubSettings) -> dict[str, list[bytes]]:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return await readable_rows(conn)
    finally:
        await conn.close()


async def _preferences(settings: HubSettings) -> set[str]:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        rows = await conn.fetch("SELECT citizen_id FROM notifications.citizen_preferences")
    finally:
        await conn.close()
    return {row["citizen_id"] for row in rows}


async def _citizen_id(settings: HubSettings, case_id: str) -> str:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        citizen_id = await conn.fetchval("SELECT citizen_id FROM registry.cases WHERE case_id = $1", case_id)
    finally:
        await conn.close()
    assert isinstance(citizen_id, str)
    return citizen_id


async def _stored(settings: HubSettings, *case_ids: str) -> dict[str, dict[str, Any]]:
    """What each service holds of each case, read through its repository with the master key."""
    found: dict[str, dict[str, Any]] = {"case": {}, "notices": {}, "inbox": {}, "person": {}, "outbox": {}}
    master = load_master_key(settings, create=False)
    for case_id in case_ids:
        async with _schema(settings, "registry") as conn:
            case = await registry_unit_of_work(conn, master).cases.get(case_id)
            assert case is not None
            found["case"][case_id] = {"erased": case.erased, "details": case.details}
            found["outbox"][case_id] = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE aggregateid = $1 AND published_at IS NOT NULL", case_id
            )
        async with _schema(settings, "notifications") as conn:
            stores = PostgresRepositories(conn, master)
            found["notices"][case_id] = [asdict(n) for n in await stores.notifications.of_case(case_id)]
            assert case.citizen_id is not None
            found["inbox"][case_id] = [
                m for m in await stores.inbox.of(case.citizen_id) if m.case_id == case_id
            ]
        async with _schema(settings, "identity") as conn:
            # The newest person with that citizen id: one who came back after an erasure is new.
            person_id = await conn.fetchval(
                "SELECT person_id FROM issued_pseudonyms WHERE pseudonym = $1 "
                "ORDER BY first_issued_at DESC LIMIT 1",
                case.citizen_id,
            )
            record = await IdentityRepositories(conn, master).persons.record(person_id)
            found["person"][case_id] = (
                record.model_dump(mode="json") if isinstance(record, Person) else record
            )
    return found


class _schema:
    """A connection on one service's tables, as that service has it."""

    def __init__(self, settings: HubSettings, schema: str) -> None:
        self._settings, self._schema = settings, schema
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await asyncpg.connect(
            self._settings.database_dsn(), server_settings={"search_path": f'"{self._schema}"'}
        )
        return self._conn

    async def __aexit__(self, *_: object) -> None:
        assert self._conn is not None
        await self._conn.close()
