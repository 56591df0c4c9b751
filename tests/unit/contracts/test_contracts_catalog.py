from __future__ import annotations

import json
import traceback

import pytest

from contracts import (
    CATALOG,
    ContractError,
    ContractViolation,
    MoveReported,
    UnknownEventType,
    contract_for,
    parse_data,
    serialize_data,
)


def test_finds_the_contract_of_a_known_event_type() -> None:
    assert contract_for("ch.lu.hub.relocation.move-reported.v1") is MoveReported


def test_catalogue_cannot_be_changed_at_runtime() -> None:
    with pytest.raises(TypeError):
        CATALOG["ch.lu.hub.x.v1"] = MoveReported  # type: ignore[index]


def test_names_an_unknown_event_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        contract_for("ch.lu.hub.parking.permit.v1")
    assert str(caught.value) == "unknown event type 'ch.lu.hub.parking.permit.v1'"


def test_tells_an_unknown_version_from_an_unknown_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        contract_for("ch.lu.hub.relocation.move-reported.v2")
    assert str(caught.value) == ("unknown version v2 of ch.lu.hub.relocation.move-reported; known: v1")


def test_parse_data_raises_unknown_event_type_for_unknown_types() -> None:
    with pytest.raises(UnknownEventType):
        parse_data("ch.lu.hub.parking.permit.v1", b"{}")


@pytest.mark.parametrize("value", [b"{not json", b"", b"\xff\xfe"])
def test_rejects_a_value_that_is_not_json(value: bytes) -> None:
    with pytest.raises(ContractViolation, match="value is not JSON"):
        parse_data(MoveReported.event_type, value)


def test_rejects_invalid_data_without_leaking_the_ahvn13(move_reported: MoveReported, valid_vn: str) -> None:
    wrong_vn = valid_vn[:12] + str((int(valid_vn[12]) + 1) % 10)
    document = json.loads(serialize_data(move_reported))
    document["person"]["vn"] = wrong_vn

    with pytest.raises(ContractViolation) as caught:
        parse_data(MoveReported.event_type, json.dumps(document).encode())

    violation = caught.value
    assert "person.vn" in str(violation)
    assert "check digit" in str(violation)
    assert wrong_vn not in str(violation)
    assert wrong_vn not in "".join(traceback.format_exception(violation))
    assert [error["loc"] for error in violation.errors] == [("person", "vn")]


def test_contract_errors_share_one_root() -> None:
    assert issubclass(ContractViolation, ContractError)
    assert issubclass(UnknownEventType, ContractError)
