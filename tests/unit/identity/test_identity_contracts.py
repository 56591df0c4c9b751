"""The partner contracts identity and the registry rely on, and the identity CLI's input checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts import CATALOG, PseudonymsIssued, Sector, parse_data, serialize_data
from contracts.admin import ChangePartnerStatus, RegisterPartner
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.cli import main

LUCERNE_OFFICE = "CH/MUN/1061/einwohnerdienste"


def _register(**changes: object) -> RegisterPartner:
    fields: dict[str, object] = {
        "partner_id": LUCERNE_OFFICE,
        "name": "Stadt Luzern, Einwohnerdienste",
        "sector": Sector.RESIDENT_REGISTRATION,
        "roles": ("municipality",),
        "local_person_id_category": "CH.LU.1061",
    }
    return RegisterPartner.model_validate(fields | changes)


def test_partner_commands_and_events_are_catalogued_under_their_names() -> None:
    assert CATALOG["ch.lu.hub.admin.register-partner.v1"] is RegisterPartner
    assert CATALOG["ch.lu.hub.admin.change-partner-status.v1"] is ChangePartnerStatus
    assert CATALOG["ch.lu.hub.identity.partner-registered.v1"] is PartnerRegistered
    assert CATALOG["ch.lu.hub.identity.partner-status-changed.v1"] is PartnerStatusChanged


def test_partner_registered_carries_the_registration_and_a_status() -> None:
    command = _register(sedex_id="1-1061-1")
    registered = PartnerRegistered(**command.model_dump(), status="active")
    assert parse_data(PartnerRegistered.event_type, serialize_data(registered)) == registered
    assert set(PartnerRegistered.model_fields) == set(RegisterPartner.model_fields) | {"status"}


@pytest.mark.parametrize(
    "changes",
    [
        {"partner_id": "CH/XYZ/1061/einwohnerdienste"},
        {"roles": ()},
        {"roles": ("Tax Office",)},
        {"name": ""},
        {"sector": "police"},
    ],
)
def test_register_partner_refuses_what_the_register_cannot_hold(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _register(**changes)


def test_partner_status_is_active_or_suspended() -> None:
    assert (
        ChangePartnerStatus(partner_id=LUCERNE_OFFICE, status="suspended", reason="audit").reason == "audit"
    )
    with pytest.raises(ValidationError):
        ChangePartnerStatus(partner_id=LUCERNE_OFFICE, status="deleted")  # type: ignore[arg-type]


def test_pseudonyms_issued_may_report_a_match_flagged_for_review() -> None:
    for match in ("exact-vn", "local-id", "new", "flagged-for-review"):
        assert PseudonymsIssued(match=match, pseudonyms=()).match == match  # type: ignore[arg-type]


def test_cli_refuses_a_malformed_partner_id_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["partner", "register", "--id", "nope", "--name", "X", "--sector", "tax", "--role", "tax-office"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("hub: error: 'nope' is not a partner id")
    assert error.count("\n") == 1


def test_cli_refuses_an_invalid_role_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "partner",
        "register",
        "--id",
        LUCERNE_OFFICE,
        "--name",
        "X",
        "--sector",
        "tax",
        "--role",
        "Bad Role",
    ]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("hub: error: roles.0: String should match pattern")
    assert error.count("\n") == 1
