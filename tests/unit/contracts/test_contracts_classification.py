"""Every contract field has a class; confidential and secret ones are what gets sealed."""

from __future__ import annotations

import json

import pytest

from contracts import CATALOG, ConsultationRequested, Contract, MoveReported
from contracts.classification import Classification, classification_of, classified_paths, merge, split

C = Classification


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_every_field_of_every_catalogued_contract_is_classified(event_type: str) -> None:
    paths = classified_paths(CATALOG[event_type])  # raises KeyError for a field left out
    assert paths
    assert all(isinstance(level, Classification) for level in paths.values())


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("person.vn", C.SECRET),
        ("person.official_name", C.CONFIDENTIAL),
        ("person.first_name", C.CONFIDENTIAL),
        ("person.date_of_birth", C.CONFIDENTIAL),
        ("person.local_person_id.id", C.CONFIDENTIAL),
        ("person.local_person_id.category", C.INTERNAL),
        ("contact.email", C.CONFIDENTIAL),
        ("contact.phone", C.CONFIDENTIAL),
        ("contact.language", C.INTERNAL),
        ("new_address.street", C.CONFIDENTIAL),
        ("previous_address.postal_code", C.CONFIDENTIAL),
        ("departure.bfs_number", C.INTERNAL),
        ("arrival.name", C.INTERNAL),
        ("no.such.field", C.SECRET),  # unknown: fail closed
    ],
)
def test_relocation_fields_are_classified_as_the_issue_asks(path: str, expected: Classification) -> None:
    assert classification_of(MoveReported, path) is expected


def test_only_confidential_and_secret_are_encrypted_at_rest() -> None:
    assert [c for c in Classification if c.encrypted_at_rest] == [C.CONFIDENTIAL, C.SECRET]


@pytest.mark.parametrize("event_type", [MoveReported.event_type, ConsultationRequested.event_type])
def test_split_keeps_no_personal_value_readable_and_merge_restores_everything(
    event_type: str, samples: dict[str, Contract]
) -> None:
    data = samples[event_type]
    dumped = data.model_dump(mode="json")
    readable, protected = split(type(data), dumped)
    assert merge(readable, protected) == dumped
    person = dumped["person"] if "person" in dumped else dumped["applicant"]
    text = json.dumps(readable)
    for value in (person["vn"], person["official_name"], person["first_name"], dumped["contact"]["email"]):
        assert value not in text
        assert value in json.dumps(protected)
    levels = classified_paths(type(data))
    for path, level in levels.items():
        top = path.split(".")[0]
        if not level.encrypted_at_rest and top in readable:
            assert _get(readable, path) == _get(dumped, path)


def test_without_a_model_or_for_unknown_keys_everything_is_protected(move_reported: MoveReported) -> None:
    dumped = move_reported.model_dump(mode="json")
    assert split(None, dumped) == ({}, dumped)
    readable, protected = split(ConsultationRequested, {"dossier_number": "BG-1", "smuggled": "Anna"})
    assert readable == {"dossier_number": "BG-1"}
    assert protected == {"smuggled": "Anna"}


def _get(data: dict[str, object], path: str) -> object:
    value: object = data
    for part in path.split("."):
        assert isinstance(value, dict)
        value = value.get(part)
    return value
