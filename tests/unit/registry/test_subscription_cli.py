"""`hub subscription set` names the slot a subscription serves; what cannot be meant is
refused as typed, before a hub is even looked for."""

from __future__ import annotations

import pytest

from hub.cli.main import main, parser
from services.registry.cli import subscription_command

MOVE = "ch.lu.hub.relocation.move-reported.v1"
LUCERNE = "CH/MUN/1061/einwohnerdienste"
SET = [
    *("subscription", "set", LUCERNE, MOVE),
    *("--purpose", "record the departure", "--legal-basis", "RHG Art. 12"),
]


def test_set_sends_the_slot_it_is_given() -> None:
    args = parser().parse_args(
        [*SET, "--case-type", "relocation", "--slot", "departure-municipality", "--field", "move_date"]
    )
    command = subscription_command(args)
    assert (command.case_type, command.slot) == ("relocation", "departure-municipality")
    assert command.scope == "party"
    assert command.fields == ("move_date",)
    assert subscription_command(parser().parse_args([*SET, "--case-type", "relocation"])).slot is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--case-type", "relocation", "--scope", "all-cases"], "an all-cases subscription spans every case"),
        ([], "needs the case type that defines it"),
    ],
)
def test_set_refuses_a_slot_it_cannot_mean(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_STATE_DIR", "/nonexistent/hub-state")  # no hub: refused before looking
    assert main([*SET, "--slot", "departure-municipality", *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hub: error: ")
    assert message in err
