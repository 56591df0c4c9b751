"""`hub audit verify` and `hub audit subject` against real PostgreSQL, database only.

The commands need HUB_DATABASE_URL and the key file under HUB_STATE_DIR, no Kafka.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import asyncpg
import pytest

from hub.audit import store as audit_store
from hub.audit.chain import AuditEntry, Decision
from hub.cli.main import main
from tests.fixtures.registry import migrated_registry_pool
from tests.integration.audit.conftest import KEY

CITIZEN = "citizen-services:c1"


def entry(n: int, *, decision: Decision = Decision.DELIVERED, case_id: str = "eumzug-1") -> AuditEntry:
    return AuditEntry(
        decision=decision,
        case_id=case_id,
        case_type="relocation",
        event_id=f"ev-{n}",
        event_type="ch.lu.hub.relocation.move-reported.v1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        partner_id="CH/CAN/LU/steuerverwaltung",
        sector="tax",
        delivery_event_id=f"dl-{n}",
        fields=("move_date", "person.first_name"),
        person_pseudonym="tax:abc",
        citizen_id=CITIZEN,
        legal_basis="StHG Art. 4",
        purpose="assign the tax domicile",
    )


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An operator's shell: the database URL and the state directory holding the key."""
    for name in ("HUB_KAFKA_BOOTSTRAP_SERVERS", "HUB_AUDIT_KEY_FILE", "HUB_SECRETS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "audit.key").write_text(KEY.secret.hex())
    return database_url


@pytest.fixture
def chain(cli_env: str) -> str:
    """Three entries: two deliveries of one case and a withheld one of another."""

    async def write() -> None:
        pool = await migrated_registry_pool(cli_env, size=2)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await audit_store.append(
                    conn,
                    KEY,
                    [entry(1), entry(2, decision=Decision.WITHHELD, case_id="eumzug-2"), entry(3)],
                )
        finally:
            await pool.close()

    asyncio.run(write())
    return cli_env


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _tamper(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "registry"})
    try:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        await conn.execute(statement)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    finally:
        await conn.close()


def test_verify_reports_an_intact_chain(chain: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
    assert out.startswith("3 entries, chain intact (head 3 ")
    code, out, _ = run(capsys, "audit", "verify", "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["intact"], result["entries"], result["head"]["seq"]) == (True, 3, 3)
    assert "broken" not in result
    anchored = f"3:{result['head']['hash']}"
    assert run(capsys, "audit", "verify", "--anchor", anchored)[0] == 0


def test_verify_exits_1_naming_the_changed_entry(chain: str, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_tamper(chain, "UPDATE audit_log SET purpose = 'marketing' WHERE seq = 2"))
    code, out, err = run(capsys, "audit", "verify")
    assert (code, err) == (1, "")
    assert out == "audit chain broken at entry 2 (changed): entry 2 does not match its seal\n"
    code, out, _ = run(capsys, "audit", "verify", "--json")
    result = json.loads(out)
    assert code == 1
    assert result["intact"] is False
    assert (result["broken"]["seq"], result["broken"]["problem"]) == (2, "changed")


def test_verify_exits_1_on_an_anchor_the_chain_lost(chain: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "verify", "--anchor", f"9:{'a' * 64}")
    assert code == 1
    assert out == "audit chain broken at entry 9 (anchor): entry 9 is anchored but the chain ends at 3\n"


def test_verify_needs_the_key_file_and_never_makes_one(
    chain: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "secrets" / "audit.key").unlink()
    code, out, err = run(capsys, "audit", "verify")
    assert (code, out) == (1, "")
    assert err == f"hub: error: no audit key at {tmp_path / 'secrets' / 'audit.key'} (HUB_AUDIT_KEY_FILE)\n"
    assert not (tmp_path / "secrets" / "audit.key").exists()


def test_a_malformed_anchor_is_one_line(chain: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "audit", "verify", "--anchor", "three:abc")
    assert code == 1
    assert err.startswith("hub: error: --anchor 'three:abc': expected SEQ:HASH")
    assert err.count("\n") == 1


def test_a_database_without_the_registry_is_one_line(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "audit", "subject", "--case", "eumzug-1")
    assert code == 1
    assert err == "hub: error: no registry tables in this database; start the hub once (`hub up`)\n"


def test_subject_lists_the_disclosures_of_a_citizen(chain: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "subject", "--citizen-id", CITIZEN, "--json")
    assert code == 0
    found = json.loads(out)
    assert [d["seq"] for d in found] == [1, 3]  # the withheld entry disclosed nothing
    first = found[0]
    assert first["partner_id"] == "CH/CAN/LU/steuerverwaltung"
    assert first["fields"] == ["move_date", "person.first_name"]
    assert (first["legal_basis"], first["purpose"]) == ("StHG Art. 4", "assign the tax domicile")
    assert (first["case_id"], first["trace_id"]) == ("eumzug-1", "4bf92f3577b34da6a3ce929d0e0e4736")
    assert first["recorded_at"]
    code, out, _ = run(capsys, "audit", "subject", "--case", "eumzug-1")
    assert code == 0
    assert out.count("CH/CAN/LU/steuerverwaltung  ch.lu.hub.relocation.move-reported.v1") == 2
    assert "  fields: move_date, person.first_name\n" in out
    assert "  legal basis: StHG Art. 4; purpose: assign the tax domicile\n" in out
    assert run(capsys, "audit", "subject", "--citizen-id", "citizen-services:nobody")[1] == (
        "no disclosures recorded\n"
    )


def test_subject_shows_one_delivery_under_two_subscriptions_as_its_two_entries(
    cli_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A municipality on both sides of a move within it: one delivery, an entry per slot."""
    lucerne = {"partner_id": "CH/MUN/1061/einwohnerdienste", "sector": "resident-registration"}
    departure = dataclasses.replace(
        entry(1),
        **lucerne,
        delivery_event_id="dl-within",
        fields=("new_address.street", "person.sector_pseudonym"),
        legal_basis="RHG Art. 12",
        purpose="record the departure",
        basis="party: departure-municipality",
    )
    arrival = dataclasses.replace(
        departure,
        fields=("previous_address.street", "person.sector_pseudonym"),
        legal_basis="RHG Art. 11",
        purpose="register the arrival",
        basis="party: arrival-municipality",
    )

    async def write() -> None:
        pool = await migrated_registry_pool(cli_env, size=2)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await audit_store.append(conn, KEY, [departure, arrival, entry(3)])
        finally:
            await pool.close()

    asyncio.run(write())
    code, out, _ = run(capsys, "audit", "subject", "--case", "eumzug-1")
    assert code == 0
    first, second, other = out.split("\n2")  # each entry starts with its time (20..)
    assert "  legal basis: RHG Art. 12; purpose: record the departure\n" in first
    assert "  received as: party: departure-municipality\n" in first
    assert "  legal basis: RHG Art. 11; purpose: register the arrival\n" in second
    assert "  received as: party: arrival-municipality\n" in second
    for text in (first, second):
        assert "delivery dl-within, entry" in text
        assert "one delivery under 2 subscriptions: entries 1, 2" in text
    assert "delivery dl-3, entry 3" in other
    assert "one delivery under" not in other
    found = json.loads(run(capsys, "audit", "subject", "--case", "eumzug-1", "--json")[1])
    assert [(d["delivery_event_id"], d["basis"]) for d in found] == [
        ("dl-within", "party: departure-municipality"),
        ("dl-within", "party: arrival-municipality"),
        ("dl-3", None),
    ]
    assert run(capsys, "audit", "verify")[0] == 0


def test_subject_refuses_an_invalid_ahvn13_without_echoing_it(
    chain: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "audit", "subject", "--ahvn13", "7561234567890")
    assert (code, out) == (1, "")
    assert err == "hub: error: --ahvn13 is not a valid AHVN13\n"


def refusal(n: int, partner_id: str, *, verified: bool) -> AuditEntry:
    return AuditEntry(
        decision=Decision.REFUSED,
        case_id=f"eumzug-r{n}",
        case_type="",
        event_id=f"ev-r{n}",
        event_type="ch.lu.hub.relocation.move-reported.v1",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        partner_id=partner_id,
        reason="BadSignature: forged, or changed after signing" if not verified else "StaleEvent: too old",
        reason_class="signature" if not verified else "replay-window",
        sender_verified=verified,
    )


@pytest.fixture
def with_refusals(chain: str) -> str:
    """The three entries of ``chain``, then two refusals of different partners."""

    async def write() -> None:
        pool = await migrated_registry_pool(chain, size=2)
        try:
            async with pool.acquire() as conn, conn.transaction():
                await audit_store.append(
                    conn,
                    KEY,
                    [
                        refusal(4, "CH/CAN/LU/eportal", verified=False),
                        refusal(5, "CH/MUN/1059/x", verified=True),
                    ],
                )
        finally:
            await pool.close()

    asyncio.run(write())
    return chain


def test_refusals_lists_refused_events_newest_first(
    with_refusals: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "audit", "refusals", "--json")
    assert code == 0
    found = json.loads(out)
    assert [(r["seq"], r["partner_id"], r["sender_verified"]) for r in found] == [
        (5, "CH/MUN/1059/x", True),
        (4, "CH/CAN/LU/eportal", False),
    ]
    assert found[1]["reason_class"] == "signature"
    assert found[1]["reason"] == "BadSignature: forged, or changed after signing"
    assert (found[1]["event_id"], found[1]["case_id"]) == ("ev-r4", "eumzug-r4")
    code, out, _ = run(capsys, "audit", "refusals")
    assert code == 0
    assert "CH/CAN/LU/eportal (not proven)  ch.lu.hub.relocation.move-reported.v1\n" in out
    assert "  signature: BadSignature: forged, or changed after signing\n" in out
    assert "CH/MUN/1059/x (signature verified)" in out


def test_refusals_filter_by_partner_and_time(with_refusals: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "audit", "refusals", "--partner", "CH/CAN/LU/eportal", "--json")[1]
    assert [r["seq"] for r in json.loads(out)] == [4]
    assert json.loads(run(capsys, "audit", "refusals", "--since", "2999-01-01T00:00:00Z", "--json")[1]) == []
    assert (
        json.loads(run(capsys, "audit", "refusals", "--until", "2000-01-01T00:00:00+01:00", "--json")[1])
        == []
    )
    assert (
        len(json.loads(run(capsys, "audit", "refusals", "--since", "2000-01-01T00:00:00Z", "--json")[1])) == 2
    )
    assert run(capsys, "audit", "refusals", "--partner", "CH/nobody")[1] == "no refusals recorded\n"
    with pytest.raises(SystemExit):
        run(capsys, "audit", "refusals", "--since", "2026-01-01T00:00:00")  # which zone?
    assert "needs a time zone" in capsys.readouterr().err


def test_refusals_are_part_of_the_chain_and_of_no_access_request(
    with_refusals: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "audit", "verify")
    assert code == 0
    assert out.startswith("5 entries, chain intact (head 5 ")
    assert run(capsys, "audit", "subject", "--case", "eumzug-r4")[1] == "no disclosures recorded\n"
    asyncio.run(_tamper(with_refusals, "UPDATE audit_log SET sender_verified = true WHERE seq = 4"))
    code, out, _ = run(capsys, "audit", "verify")
    assert (code, out) == (1, "audit chain broken at entry 4 (changed): entry 4 does not match its seal\n")
