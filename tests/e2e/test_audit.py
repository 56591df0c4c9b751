"""The audit log after a relocation case: the chain verifies, the citizen's disclosures are
listed with partner, fields and legal basis, and a changed row makes `hub audit verify` fail.

The commands run as an operator would run them against the hub (`hub.cli.main.main` with the
hub's HUB_DATABASE_URL and HUB_STATE_DIR, where the registry keeps the audit key).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from hub.cli.casefile import CaseView
from hub.cli.main import main
from hub.local.demo import KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE, demo_person, run_demo
from hub.runtime.settings import HubSettings
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure

MOVE = "ch.lu.hub.relocation.move-reported.v1"
COMPLETED = "ch.lu.hub.case.completed.v1"
PERSON = ["person.date_of_birth", "person.first_name", "person.official_name", "person.sector_pseudonym"]


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory) as settings:
        yield settings


@pytest.fixture(scope="module")
def completed_case(hub: HubSettings) -> CaseView:
    view = asyncio.run(run_demo(hub, progress=lambda _line: None, timeout_s=90))
    assert view.status == "completed"
    return view


@pytest.fixture
def operator(hub: HubSettings, monkeypatch: pytest.MonkeyPatch) -> HubSettings:
    for name in ("HUB_KAFKA_BOOTSTRAP_SERVERS", "HUB_AUDIT_KEY_FILE", "HUB_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_DATABASE_URL", hub.database_dsn())
    monkeypatch.setenv("HUB_STATE_DIR", str(hub.state_dir))
    return hub


def hub_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == "" or code != 0, err
    return code, out


async def _fetchval(settings: HubSettings, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def citizen_id_of(settings: HubSettings, case: CaseView) -> str:
    citizen_id = asyncio.run(
        _fetchval(settings, "SELECT citizen_id FROM registry.cases WHERE case_id = $1", case.case_id)
    )
    assert isinstance(citizen_id, str)
    assert citizen_id.startswith("citizen-services:")
    return citizen_id


def test_verify_passes_after_a_relocation_case(
    completed_case: CaseView, operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = hub_cli(capsys, "audit", "verify", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["intact"] is True
    # Three move deliveries, three completion deliveries, three milestones routed to nobody.
    assert result["entries"] >= 9
    code, out = hub_cli(capsys, "audit", "verify")
    assert code == 0
    assert out.startswith(f"{result['entries']} entries, chain intact")


def test_subject_lists_the_deliveries_to_the_three_agencies(
    completed_case: CaseView, operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    citizen_id = citizen_id_of(operator, completed_case)
    code, out = hub_cli(capsys, "audit", "subject", "--citizen-id", citizen_id, "--json")
    assert code == 0
    found = json.loads(out)
    moves = {d["partner_id"]: d for d in found if d["event_type"] == MOVE}
    completions = {d["partner_id"]: d for d in found if d["event_type"] == COMPLETED}
    assert set(moves) == set(completions) == {KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE}
    assert len(found) == 6
    kriens, lucerne, tax = moves[KRIENS_OFFICE], moves[LUCERNE_OFFICE], moves[TAX_OFFICE]
    assert set(PERSON) | {"person.sex", "move_date"} <= set(kriens["fields"])
    # Kriens records the departure: where the person goes; it has them in its register.
    assert any(f.startswith("new_address.") for f in kriens["fields"])
    assert not any(f.startswith("previous_address.") for f in kriens["fields"])
    # Lucerne registers the arrival: the new address and where the person comes from.
    assert any(f.startswith("new_address.") for f in lucerne["fields"])
    assert any(f.startswith("previous_address.") for f in lucerne["fields"])
    # The tax office's subscription: no sex, no previous address.
    assert set(PERSON) <= set(tax["fields"])
    assert "person.sex" not in tax["fields"]
    assert not any(f.startswith("previous_address.") for f in tax["fields"])
    # Each received the move as the party it is to the case.
    assert kriens["basis"] == "party: departure-municipality"
    assert lucerne["basis"] == "party: arrival-municipality"
    assert tax["basis"] == completions[TAX_OFFICE]["basis"] == "party: arrival-tax-office"
    assert (kriens["purpose"], completions[KRIENS_OFFICE]["purpose"]) == (
        "record the departure",
        "close the departure file",
    )
    assert (lucerne["purpose"], completions[LUCERNE_OFFICE]["purpose"]) == (
        "register the arrival",
        "close the arrival file",
    )
    assert kriens["legal_basis"].startswith("RHG Art. 12")
    assert lucerne["legal_basis"].startswith("RHG Art. 11")
    assert completions[KRIENS_OFFICE]["basis"] == "party: departure-municipality"
    assert completions[LUCERNE_OFFICE]["basis"] == "party: arrival-municipality"
    assert tax["legal_basis"].startswith("StHG Art. 4")
    assert tax["purpose"] == "assign the tax domicile"
    assert kriens["person_pseudonym"] == lucerne["person_pseudonym"] != tax["person_pseudonym"]
    assert completions[TAX_OFFICE]["fields"] == ["case_type", "completed_at", "milestones"]
    for disclosure in found:
        assert disclosure["case_id"] == completed_case.case_id
        assert disclosure["trace_id"] == completed_case.trace_id
        assert disclosure["citizen_id"] == citizen_id
        assert disclosure["delivery_event_id"]
    # The same answer through the case, and through identity from the AHVN13.
    assert (
        json.loads(hub_cli(capsys, "audit", "subject", "--case", completed_case.case_id, "--json")[1])
        == found
    )
    by_ahvn13 = hub_cli(capsys, "audit", "subject", "--ahvn13", demo_person().vn, "--json")[1]
    assert json.loads(by_ahvn13) == found
    text = hub_cli(capsys, "audit", "subject", "--citizen-id", citizen_id)[1]
    assert f"{TAX_OFFICE}  {MOVE}\n" in text
    assert "  received as: party: arrival-tax-office\n" in text
    assert f"  legal basis: {kriens['legal_basis']}; purpose: record the departure\n" in text
    assert f", delivery {kriens['delivery_event_id']}, entry {kriens['seq']}\n" in text
    assert "one delivery under" not in text  # every party fills one slot of this move
    assert demo_person().vn not in text + by_ahvn13


def test_verify_fails_once_an_audit_row_is_changed(
    completed_case: CaseView, operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last in this module: it leaves the chain broken."""

    async def tamper() -> int:
        conn = await asyncpg.connect(operator.database_dsn())
        try:
            async with conn.transaction():
                await conn.execute("ALTER TABLE registry.audit_log DISABLE TRIGGER USER")
                seq: int = await conn.fetchval(
                    "UPDATE registry.audit_log SET legal_basis = 'Einwilligung'"
                    " WHERE seq = (SELECT min(seq) FROM registry.audit_log"
                    "              WHERE partner_id = $1 AND decision = 'delivered') RETURNING seq",
                    TAX_OFFICE,
                )
                await conn.execute("ALTER TABLE registry.audit_log ENABLE TRIGGER USER")
            return seq
        finally:
            await conn.close()

    assert hub_cli(capsys, "audit", "verify")[0] == 0
    seq = asyncio.run(tamper())
    code, out = hub_cli(capsys, "audit", "verify")
    assert code == 1
    assert out == f"audit chain broken at entry {seq} (changed): entry {seq} does not match its seal\n"
