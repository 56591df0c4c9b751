"""The compatibility gate: on synthetic schema pairs of the constructs pydantic emits, on the
committed snapshots, and on a real contract changed in a temporary copy of the package."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts import CATALOG, ArrivalRegistered
from contracts.compat import SNAPSHOTS, Direction, Mode, compare, is_breaking, report
from contracts.schemas import json_schemas

ROOT = Path(__file__).resolve().parents[3]
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def published() -> dict[str, Any]:
    """A schema as pydantic writes one: a closed object, a nested model by $ref, an optional
    field as anyOf with null, an enum, a format, a pattern, bounds, an array, a default."""
    return {
        "$schema": DIALECT,
        "$id": "https://hub.stadtluzern.ch/schemas/ch.lu.hub.test.thing-happened.v1.json",
        "$defs": {
            "Municipality": {
                "additionalProperties": False,
                "properties": {
                    "bfs_number": {"maximum": 9999, "minimum": 1, "title": "Bfs Number", "type": "integer"},
                    "canton": {"pattern": "^[A-Z]{2}$", "title": "Canton", "type": "string"},
                },
                "required": ["bfs_number", "canton"],
                "title": "Municipality",
                "type": "object",
            },
            "Opinion": {
                "enum": ["approve", "approve-with-conditions", "object"],
                "title": "Opinion",
                "type": "string",
            },
        },
        "additionalProperties": False,
        "description": "Something happened.",
        "properties": {
            "municipality": {"$ref": "#/$defs/Municipality"},
            "opinion": {"$ref": "#/$defs/Opinion"},
            "happened_on": {"format": "date", "title": "Happened On", "type": "string"},
            "remarks": {
                "anyOf": [{"maxLength": 500, "type": "string"}, {"type": "null"}],
                "default": None,
                "title": "Remarks",
            },
            "conditions": {
                "default": [],
                "items": {"type": "string"},
                "title": "Conditions",
                "type": "array",
            },
            "count": {"minimum": 0, "title": "Count", "type": "integer"},
            "country": {"default": "CH", "pattern": "^[A-Z]{2}$", "title": "Country", "type": "string"},
            "placeholders": {
                "additionalProperties": {"type": "string"},
                "title": "Placeholders",
                "type": "object",
            },
        },
        "required": ["municipality", "opinion", "happened_on", "count", "placeholders"],
        "title": "ThingHappened",
        "type": "object",
    }


def changed(edit: Any) -> list[Any]:
    new = copy.deepcopy(published())
    edit(new)
    return compare(published(), new)


def verdicts(changes: list[Any], mode: Mode = Mode.FULL) -> list[tuple[str, Direction, bool]]:
    return [(c.path, c.direction, is_breaking(c, mode)) for c in changes]


def test_an_unchanged_schema_has_no_change() -> None:
    assert compare(published(), published()) == []


def test_a_removed_field_breaks() -> None:
    def remove(s: dict[str, Any]) -> None:
        del s["properties"]["remarks"]

    def remove_required(s: dict[str, Any]) -> None:
        del s["properties"]["count"]
        s["required"].remove("count")

    assert verdicts(changed(remove)) == [("remarks", Direction.NARROWS, True)]
    assert verdicts(changed(remove_required)) == [("count", Direction.BOTH, True)]
    # Even a reader that takes anything new cannot take a required field gone.
    assert verdicts(changed(remove_required), Mode.BACKWARD) == [("count", Direction.BOTH, True)]


def test_a_retyped_field_breaks() -> None:
    def retype(s: dict[str, Any]) -> None:
        s["properties"]["count"] = {"title": "Count", "type": "string"}

    [change, *rest] = changed(retype)
    assert (change.path, change.what, change.direction) == ("count", "type integer -> string", Direction.BOTH)
    assert is_breaking(change)
    assert [c.what for c in rest] == ["minimum 0 -> (none)"]


def test_an_optional_field_made_required_breaks() -> None:
    def require(s: dict[str, Any]) -> None:
        s["required"].append("country")

    [change] = changed(require)
    assert (change.path, change.what, change.direction) == (
        "country",
        "optional field made required",
        Direction.NARROWS,
    )
    assert is_breaking(change, Mode.FULL)
    assert is_breaking(change, Mode.BACKWARD)
    assert not is_breaking(change, Mode.FORWARD)


def test_a_narrowed_enum_breaks_and_names_the_dropped_value() -> None:
    def narrow(s: dict[str, Any]) -> None:
        s["$defs"]["Opinion"]["enum"].remove("object")

    [change] = changed(narrow)
    assert (change.path, change.direction) == ("opinion", Direction.NARROWS)
    assert change.what == 'allowed values narrowed: drops "object"'
    assert is_breaking(change)


def test_a_widened_enum_breaks_old_readers_of_closed_schemas() -> None:
    def widen(s: dict[str, Any]) -> None:
        s["$defs"]["Opinion"]["enum"].append("abstain")

    [change] = changed(widen)
    assert change.direction is Direction.WIDENS
    assert is_breaking(change, Mode.FULL)  # the hub's policy
    assert not is_breaking(change, Mode.BACKWARD)


def test_an_optional_field_added_to_a_closed_object_breaks_strict_old_readers() -> None:
    def add(s: dict[str, Any]) -> None:
        s["properties"]["note"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}

    def add_required(s: dict[str, Any]) -> None:
        s["properties"]["note"] = {"type": "string"}
        s["required"].append("note")

    assert verdicts(changed(add)) == [("note", Direction.WIDENS, True)]
    assert verdicts(changed(add), Mode.BACKWARD) == [("note", Direction.WIDENS, False)]
    assert verdicts(changed(add_required), Mode.BACKWARD) == [("note", Direction.BOTH, True)]


@pytest.mark.parametrize(
    ("edit", "path", "what", "direction"),
    [
        (lambda s: s["$defs"]["Municipality"]["properties"]["bfs_number"].update(maximum=999),
         "municipality.bfs_number", "maximum 9999 -> 999", Direction.NARROWS),
        (lambda s: s["properties"]["remarks"]["anyOf"][0].update(maxLength=1000),
         "remarks", "maxLength 500 -> 1000", Direction.WIDENS),
        (lambda s: s["properties"]["count"].update(minimum=1), "count", "minimum 0 -> 1", Direction.NARROWS),
        (lambda s: s["properties"]["country"].update(pattern="^[A-Z]{2,3}$"),
         "country", 'pattern "^[A-Z]{2}$" -> "^[A-Z]{2,3}$"', Direction.BOTH),
        (lambda s: s["properties"]["happened_on"].update(format="date-time"),
         "happened_on", 'format "date" -> "date-time"', Direction.BOTH),
        (lambda s: s["properties"]["happened_on"].pop("format"), "happened_on", 'format "date" -> (none)',
         Direction.WIDENS),
        (lambda s: s["properties"].update(count={"title": "Count", "anyOf": [
            {"minimum": 0, "type": "integer"}, {"type": "null"}]}),
         "count", "may now be null", Direction.WIDENS),
        (lambda s: s["properties"]["country"].update(default="LI"), "country",
         'default "CH" -> "LI": the meaning of an absent field changes', Direction.BOTH),
        (lambda s: s.update(additionalProperties=True), "(root)",
         "object opened (additionalProperties no longer false)", Direction.WIDENS),
        (lambda s: s["properties"]["placeholders"].update(additionalProperties={"type": "integer"}),
         "placeholders{}", "type string -> integer", Direction.BOTH),
        (lambda s: s["properties"]["conditions"]["items"].update(maxLength=10), "conditions[]",
         "maxLength (none) -> 10", Direction.NARROWS),
        (lambda s: s["properties"]["count"].update(type="number"), "count", "type integer -> number",
         Direction.WIDENS),
        (lambda s: s["properties"]["count"].update(multipleOf=5), "count",
         "multipleOf (none) -> 5 (a keyword the checker does not weigh: breaking)", Direction.BOTH),
        (lambda s: s.update({"$id": "https://hub.stadtluzern.ch/schemas/other.json"}), "(root)",
         '$id "https://hub.stadtluzern.ch/schemas/ch.lu.hub.test.thing-happened.v1.json" -> '
         '"https://hub.stadtluzern.ch/schemas/other.json"', Direction.BOTH),
    ],
)  # fmt: skip
def test_each_construct_changes_in_its_direction_and_breaks_the_full_policy(
    edit: Any, path: str, what: str, direction: Direction
) -> None:
    [change] = changed(edit)
    assert (change.path, change.what, change.direction) == (path, what, direction)
    assert is_breaking(change)
    assert path in str(change)
    assert "compatible" in str(change)


def test_annotations_reordering_and_renamed_definitions_are_allowed() -> None:
    def document(s: dict[str, Any]) -> None:
        s["description"] = "Something happened, told better."
        s["properties"]["remarks"]["title"] = "Bemerkungen"
        s["properties"]["remarks"]["description"] = "free text of the office"
        s["properties"]["count"]["examples"] = [3]
        s["properties"]["opinion"]["deprecated"] = True
        s["required"].reverse()
        s["properties"] = dict(reversed(s["properties"].items()))
        s["$defs"]["Opinion"]["enum"].reverse()
        s["$defs"]["Place"] = s["$defs"].pop("Municipality")
        s["$defs"]["Place"]["description"] = "eCH-0007 municipality."
        s["properties"]["municipality"] = {"$ref": "#/$defs/Place"}

    changes = changed(document)
    assert changes
    assert {c.direction for c in changes} == {Direction.ANNOTATION}
    assert not any(is_breaking(c) for c in changes)


def test_the_committed_snapshots_cover_the_catalogue_and_hold() -> None:
    result = report()
    assert set(result.changes) == set(CATALOG)
    assert result.unpublished == result.vanished == result.revived == []
    assert result.breaking() == {}
    assert result.passed


def test_a_new_version_without_snapshot_and_a_vanished_one_fail(tmp_path: Path) -> None:
    shutil.copytree(SNAPSHOTS, tmp_path, dirs_exist_ok=True)
    current = json_schemas()
    current["ch.lu.hub.relocation.arrival-registered.v2"] = current.pop(ArrivalRegistered.event_type)
    result = report(tmp_path, current)
    assert result.unpublished == ["ch.lu.hub.relocation.arrival-registered.v2"]
    assert result.vanished == [ArrivalRegistered.event_type]
    assert not result.passed
    text = "\n".join(result.lines())
    assert "--snapshot ch.lu.hub.relocation.arrival-registered.v2" in text
    assert f"--retire {ArrivalRegistered.event_type}" in text


# --- the command line on a real contract, changed in a temporary copy of the package ---


def _copy_of_contracts(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "contracts", tmp_path / "contracts", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "contracts"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _compat(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Only the copy on the path: the command sees the changed contracts and their snapshots.
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "contracts.compat", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


REMARKS = "    remarks: str | None = Field(default=None, max_length=500)\n\n\nclass TaxRecordUpdated"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (REMARKS, "\n\nclass TaxRecordUpdated",
         "remarks: optional field removed from a closed object (narrows"),
        ("    registered_on: date\n", "    registered_on: int\n",
         "registered_on: type string -> integer (both"),
        ("    registered_on: date\n", "    registered_on: date\n    office: str\n",
         "office: required field added (both"),
        (REMARKS, REMARKS.replace("default=None, max_length=500", "max_length=500"),
         "remarks: optional field made required (narrows"),
    ],
    ids=["removed-field", "retyped-field", "added-required-field", "optional-made-required"],
)  # fmt: skip
def test_the_gate_fails_on_a_breaking_change_to_a_real_contract(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    package = _copy_of_contracts(tmp_path)
    _edit(package / "relocation.py", old, new)
    done = _compat(tmp_path, "--check")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"BREAKING {ArrivalRegistered.event_type}" in done.stdout
    assert expected in done.stdout
    assert "the contracts break a published version" in done.stderr
    # --update refuses to record it, and the snapshot stays as published.
    snapshot = package / "snapshots" / f"{ArrivalRegistered.event_type}.json"
    before = snapshot.read_text()
    assert _compat(tmp_path, "--update").returncode == 1
    assert snapshot.read_text() == before


def test_the_gate_fails_on_a_narrowed_enum_of_a_real_contract(tmp_path: Path) -> None:
    package = _copy_of_contracts(tmp_path)
    _edit(package / "building.py", '    OBJECT = "object"\n', "")
    done = _compat(tmp_path, "--check")
    assert done.returncode == 1
    for event_type in ("environment-opinion-given", "insurance-opinion-given"):
        assert f"BREAKING ch.lu.hub.building-permit.{event_type}.v1" in done.stdout
    assert 'opinion: allowed values narrowed: drops "object" (narrows' in done.stdout


def test_the_gate_passes_a_documentation_change_and_records_it_on_request(tmp_path: Path) -> None:
    package = _copy_of_contracts(tmp_path)
    _edit(
        package / "relocation.py",
        "class ArrivalRegistered(Contract):\n",
        'class ArrivalRegistered(Contract):\n    """The arrival municipality registered the person."""\n\n',
    )
    _edit(
        package / "relocation.py",
        "    registered_on: date\n",
        '    registered_on: date = Field(description="when")\n',
    )
    done = _compat(tmp_path, "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"allowed {ArrivalRegistered.event_type}" in done.stdout
    assert "(root): description changed (annotation" in done.stdout
    assert "registered_on: description changed (annotation" in done.stdout
    assert _compat(tmp_path, "--update").returncode == 0
    snapshot = json.loads((package / "snapshots" / f"{ArrivalRegistered.event_type}.json").read_text())
    assert snapshot["description"] == "The arrival municipality registered the person."
    again = _compat(tmp_path, "--check")
    assert again.returncode == 0
    assert "allowed" not in again.stdout


def test_a_new_version_is_published_only_by_an_explicit_snapshot(tmp_path: Path) -> None:
    package = _copy_of_contracts(tmp_path)
    _edit(
        package / "relocation.py",
        "class TaxRecordUpdated(Contract):",
        "class ArrivalRegisteredV2(Contract):\n"
        '    event_type: ClassVar[str] = _PREFIX + "arrival-registered.v2"\n\n'
        "    municipality: Municipality\n    registered_on: date\n    household_size: int\n\n\n"
        "class TaxRecordUpdated(Contract):",
    )
    done = _compat(tmp_path, "--check")
    assert done.returncode == 1
    assert "UNPUBLISHED ch.lu.hub.relocation.arrival-registered.v2" in done.stdout
    assert not (package / "snapshots" / "ch.lu.hub.relocation.arrival-registered.v2.json").exists()
    recorded = _compat(tmp_path, "--snapshot", "ch.lu.hub.relocation.arrival-registered.v2")
    assert recorded.returncode == 0, recorded.stderr
    assert _compat(tmp_path, "--check").returncode == 0
    # An existing snapshot is never overwritten that way.
    again = _compat(tmp_path, "--snapshot", ArrivalRegistered.event_type)
    assert again.returncode == 1
    assert "has a snapshot already" in again.stderr


def test_a_removed_version_fails_until_retired_and_is_never_reused(tmp_path: Path) -> None:
    package = _copy_of_contracts(tmp_path)
    # Without its event type the class is no contract of the catalogue any more.
    declaration = '    event_type: ClassVar[str] = _PREFIX + "arrival-registered.v1"\n'
    _edit(package / "relocation.py", declaration, "")
    _edit(package / "channels.py", "    ArrivalRegistered.event_type,\n", "")
    done = _compat(tmp_path, "--check")
    assert done.returncode == 1
    assert f"REMOVED {ArrivalRegistered.event_type}" in done.stdout
    assert _compat(tmp_path, "--retire", ArrivalRegistered.event_type).returncode == 0
    assert (package / "snapshots" / "retired" / f"{ArrivalRegistered.event_type}.json").exists()
    assert _compat(tmp_path, "--check").returncode == 0
    _edit(
        package / "relocation.py",
        "class ArrivalRegistered(Contract):\n",
        f"class ArrivalRegistered(Contract):\n{declaration}",
    )
    revived = _compat(tmp_path, "--check")
    assert revived.returncode == 1
    assert f"REUSED {ArrivalRegistered.event_type}" in revived.stdout
