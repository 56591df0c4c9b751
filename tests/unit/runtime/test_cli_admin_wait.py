"""`--wait` decides from the applying service's inbox and dead letters; the exit codes are one list."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from contracts import Envelope, SetSubscription
from contracts.admin import RegisterPartnerKey
from hub.cli.admin_wait import CommandResult, await_outcome
from hub.cli.exit_codes import MEANINGS, ExitCode, epilog
from hub.cli.main import main, parser
from hub.security.operator_keys import ADMIN_CLI_SOURCE


class FakeConnection:
    """Answers the two polls as the service's tables would: a dead letter, an inbox row, or neither."""

    def __init__(self, *, refusal: dict[str, str] | None = None, applied: bool = False) -> None:
        self.refusal, self.applied = refusal, applied
        self.queries: list[str] = []

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, str] | None:
        self.queries.append(sql)
        return self.refusal

    async def fetchval(self, sql: str, *args: Any) -> bool | None:
        self.queries.append(sql)
        return True if self.applied else None


def _subscription() -> Envelope:
    command = SetSubscription(
        partner_id="CH/MUN/1061/einwohnerdienste",
        subscribed_event_type="ch.lu.hub.relocation.move-reported.v1",
        purpose="p",
        legal_basis="l",
        retention_days=30,
    )
    return Envelope.new(
        command, source=ADMIN_CLI_SOURCE, business_process_id="partner:CH/MUN/1061/einwohnerdienste"
    )


def _outcome(conn: FakeConnection, envelope: Envelope, timeout_s: float = 1.0) -> CommandResult:
    return asyncio.run(await_outcome(conn, envelope, timeout_s=timeout_s, poll_s=0.01))  # type: ignore[arg-type]


def test_a_dead_letter_of_the_command_is_a_refusal_with_its_reason() -> None:
    conn = FakeConnection(refusal={"error_class": "UnknownSlot", "error_message": "no slot x"})
    result = _outcome(conn, _subscription())
    assert (result.outcome, result.reason, result.exit_code) == ("refused", "UnknownSlot: no slot x", 3)
    assert "registry.dead_letters" in conn.queries[0]


def test_an_inbox_row_is_acceptance() -> None:
    result = _outcome(FakeConnection(applied=True), _subscription())
    assert (result.outcome, result.service, result.exit_code) == ("accepted", "registry", ExitCode.OK)


def test_identitys_commands_are_looked_for_in_identitys_tables() -> None:
    command = RegisterPartnerKey(
        partner_id="CH/MUN/1061/einwohnerdienste", key_id="k-1", public_key="A" * 43 + "="
    )
    conn = FakeConnection(applied=True)
    envelope = Envelope.new(command, source=ADMIN_CLI_SOURCE, business_process_id="partner:x")
    assert _outcome(conn, envelope).service == "identity"
    assert all("identity." in query for query in conn.queries)


def test_no_answer_within_the_timeout_exits_4_and_says_it_may_still_apply() -> None:
    result = _outcome(FakeConnection(), _subscription(), timeout_s=0.05)
    assert (result.outcome, result.exit_code) == ("no-answer", ExitCode.NO_ANSWER)
    assert "may still be applied" in result.as_text()
    assert json.loads(json.dumps(result.as_json()))["outcome"] == "no-answer"


def test_hub_help_lists_every_exit_code() -> None:
    text = parser().format_help()
    assert text.endswith(epilog() + "\n")
    for code in ExitCode:
        assert code in MEANINGS
        assert f"\n  {int(code):>3}  " in epilog()


def test_an_interrupted_command_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("hub.cli.main.cmd_schemas", interrupted)
    assert main(["schemas", "anywhere"]) == ExitCode.INTERRUPTED


def test_test_case_data_that_breaks_its_contract_is_one_line_before_any_hub_is_looked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "move.json"
    data.write_text('{"person": {"vn": "756.1234"}}', encoding="utf-8")
    assert main(["case", "open", "--test", "relocation", "--data", str(data)]) == ExitCode.FAILED
    error = capsys.readouterr().err
    assert error.startswith(f"hub: error: {data}: not valid data for ch.lu.hub.relocation.move-reported.v1")
    assert "756.1234" not in error  # the data may name a person: never quoted
    assert error.count("\n") == 1


def test_a_test_case_id_must_say_it_is_a_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "move.json"
    main(["case", "open", "--test", "relocation", "--example"])
    data.write_text(capsys.readouterr().out, encoding="utf-8")
    argv = ["case", "open", "--test", "relocation", "--data", str(data), "--case-id", "eumzug-1"]
    assert main(argv) == ExitCode.FAILED
    assert "must begin with 'test-'" in capsys.readouterr().err


def test_opening_a_case_without_test_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["case", "open", "relocation", "--example"])
    assert exited.value.code == ExitCode.USAGE
    assert "--test" in capsys.readouterr().err
