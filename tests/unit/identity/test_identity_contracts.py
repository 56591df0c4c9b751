"""The partner contracts identity and the registry rely on, and the identity CLI's input checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts import CATALOG, Jurisdiction, PseudonymsIssued, Sector, parse_data, serialize_data
from contracts.admin import ChangePartnerStatus, RegisterPartner
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.cli.exit_codes import ExitCode
from hub.cli.main import main, parser
from services.identity.cli import _jurisdiction

LUCERNE_OFFICE = "CH/MUN/1061/einwohnerdienste"


def _register(**changes: object) -> RegisterPartner:
    fields: dict[str, object] = {
        "partner_id": LUCERNE_OFFICE,
        "name": "Stadt Luzern, Einwohnerdienste",
        "sector": Sector.RESIDENT_REGISTRATION,
        "roles": ("municipality",),
        "jurisdiction": {"level": "municipality", "bfs_number": 1061, "canton": "LU"},
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
        {"jurisdiction": None},
        {"jurisdiction": {"level": "municipality", "canton": "LU"}},
        {"jurisdiction": {"level": "municipality", "bfs_number": 1061}},
        {"jurisdiction": {"level": "canton", "canton": "XX"}},
        {"jurisdiction": {"level": "canton", "canton": "LU", "bfs_number": 1061}},
        {"jurisdiction": {"level": "federal", "canton": "LU"}},
        {"jurisdiction": {"level": "region", "canton": "LU"}},
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


@pytest.mark.parametrize("role", ["Bad Role", "mayor"])
def test_cli_refuses_an_unknown_role_naming_the_known_ones(
    role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        *("partner", "register", "--id", LUCERNE_OFFICE, "--name", "X", "--sector", "tax"),
        *("--role", role, "--municipality", "1061", "--canton", "LU"),
    ]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == ExitCode.USAGE
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"unknown role {role!r}" in error
    # Every role a process definition names, and operations, is offered.
    assert "municipality, operations, portal, statistics, tax-office" in error


def test_cli_accepts_every_role_a_process_definition_names() -> None:
    from services.identity.cli import known_roles
    from services.registry.domain import load_processes

    named = {
        role
        for process in load_processes().by_case_type.values()
        for role in (process.opened_by.role, *(slot.role for slot in process.parties))
    }
    assert named <= set(known_roles())
    assert "operations" in known_roles()


def test_cli_refuses_an_unknown_sector_as_usage(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*("partner", "register", "--id", LUCERNE_OFFICE, "--name", "X", "--sector", "taxes")]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--role", "tax-office", "--canton", "LU"])
    assert exited.value.code == ExitCode.USAGE
    assert "invalid choice: 'taxes'" in capsys.readouterr().err


def test_a_partner_without_a_jurisdiction_cannot_be_registered() -> None:
    fields = _register().model_dump()
    del fields["jurisdiction"]
    with pytest.raises(ValidationError, match="jurisdiction"):
        RegisterPartner.model_validate(fields)
    with pytest.raises(ValidationError, match="jurisdiction"):
        PartnerRegistered.model_validate(fields | {"status": "active"})


def test_jurisdictions_name_themselves_as_listings_show_them() -> None:
    assert str(Jurisdiction(level="municipality", bfs_number=1711, canton="ZG")) == "municipality 1711 (ZG)"
    assert str(Jurisdiction(level="canton", canton="LU")) == "canton LU"
    assert str(Jurisdiction(level="federal")) == "federal"


REGISTER = [
    "partner",
    "register",
    "--id",
    LUCERNE_OFFICE,
    "--name",
    "X",
    "--sector",
    "tax",
    "--role",
    "tax-office",
]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--municipality", "1711", "--canton", "ZG"],
            {"level": "municipality", "bfs_number": 1711, "canton": "ZG"},
        ),
        (["--canton", "ZG"], {"level": "canton", "canton": "ZG"}),
        (["--federal"], {"level": "federal"}),
    ],
)
def test_cli_reads_the_jurisdiction_from_its_options(options: list[str], expected: dict[str, object]) -> None:
    jurisdiction = _jurisdiction(parser().parse_args([*REGISTER, *options]))
    assert jurisdiction == expected
    assert Jurisdiction.model_validate(jurisdiction).level == expected["level"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "hub: error: a partner needs its jurisdiction: --municipality BFS --canton XX"),
        (["--municipality", "1711"], "hub: error: a partner needs its jurisdiction"),
        (["--federal", "--canton", "LU"], "hub: error: --federal names no municipality and no canton"),
        (["--canton", "XX"], "hub: error: jurisdiction.canton: Value error, 'XX' is not a Swiss canton"),
    ],
)
def test_cli_refuses_a_missing_or_invalid_jurisdiction_in_one_line(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*REGISTER, *options]) == 1
    error = capsys.readouterr().err
    assert error.startswith(message), error
    assert error.count("\n") == 1
