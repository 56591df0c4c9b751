"""Registry rules without I/O: process definitions, lifecycle, data minimisation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts import CATALOG
from services.registry.delivery import case_delivery
from services.registry.domain import (
    CaseStatus,
    ProcessDefinition,
    Processes,
    allowed_person_fields,
    load_processes,
    minimize,
    next_status,
)
from services.registry.model import Subscriber
from services.registry.subscriptions_domain import Grant

MOVE = {
    "person": {"official_name": "Muster", "first_name": "Anna", "sex": "2", "date_of_birth": "1990-04-17"},
    "contact": {"email": "anna@example.ch", "language": "de"},
    "new_address": {"street": "Hertensteinstrasse", "postal_code": "6004", "town": "Luzern"},
    "previous_address": {"street": "Schachenstrasse", "postal_code": "6010", "town": "Kriens"},
    "arrival": {"bfs_number": 1061, "name": "Luzern", "canton": "LU"},
    "move_date": "2026-12-01",
}


@pytest.fixture(scope="module")
def processes() -> Processes:
    return load_processes()


def test_both_case_types_are_loaded_from_their_definitions(processes: Processes) -> None:
    assert set(processes.by_case_type) == {"relocation", "building-permit"}
    relocation = processes["relocation"]
    assert relocation.milestone_names == {
        "departure-confirmed",
        "arrival-registered",
        "tax-record-updated",
        "departure-tax-record-updated",
    }
    assert (
        processes.by_opening["ch.lu.hub.building-permit.consultation-requested.v1"].case_type
        == "building-permit"
    )


def test_every_event_type_a_process_names_is_in_the_catalogue(processes: Processes) -> None:
    for process in processes.by_case_type.values():
        assert process.opened_by.event_type in CATALOG
        assert all(m.event_type in CATALOG for m in process.milestones)


def test_a_process_naming_an_unknown_event_type_is_refused(processes: Processes) -> None:
    broken = processes["relocation"].model_dump()
    broken["opened_by"]["event_type"] = "ch.lu.hub.relocation.moved.v9"
    with pytest.raises(ValueError, match="unknown event type"):
        Processes([ProcessDefinition.model_validate(broken)])


def test_process_definitions_are_closed() -> None:
    with pytest.raises(ValidationError):
        ProcessDefinition.model_validate({"case_type": "x", "surprise": 1})


def test_case_completes_only_when_every_required_milestone_is_reached(processes: Processes) -> None:
    required = frozenset({"departure-confirmed", "arrival-registered", "tax-record-updated"})
    names = sorted(required)
    assert next_status(required, CaseStatus.OPENED, frozenset(names[:2])) is CaseStatus.IN_PROGRESS
    assert next_status(required, CaseStatus.IN_PROGRESS, frozenset(names)) is CaseStatus.COMPLETED


def test_escalated_case_stays_escalated_until_complete(processes: Processes) -> None:
    required = processes["relocation"].milestone_names
    assert next_status(required, CaseStatus.ESCALATED, frozenset()) is CaseStatus.ESCALATED
    assert next_status(required, CaseStatus.ESCALATED, required) is CaseStatus.COMPLETED


def test_final_status_does_not_change(processes: Processes) -> None:
    required = processes["relocation"].milestone_names
    assert next_status(required, CaseStatus.REJECTED, required) is CaseStatus.REJECTED


def test_minimize_keeps_only_the_allowed_paths() -> None:
    reduced = minimize(MOVE, ["new_address", "arrival.name", "move_date"], withhold="person")
    assert reduced == {
        "new_address": MOVE["new_address"],
        "arrival": {"name": "Luzern"},
        "move_date": "2026-12-01",
    }


def test_minimize_never_passes_the_person_even_if_listed() -> None:
    assert minimize(MOVE, ["person", "person.first_name"], withhold="person") == {}


def test_person_fields_are_granted_one_by_one() -> None:
    granted = allowed_person_fields(["person.official_name", "move_date"], "person")
    assert granted == {"official_name": True, "first_name": False, "sex": False, "date_of_birth": False}


def test_delivery_carries_the_pseudonym_and_only_granted_fields() -> None:
    from contracts import IssuedPseudonym, Sector

    subscriber = Subscriber(
        "CH/CAN/LU/steuerverwaltung",
        "tax",
        "hub.delivery.x",
        (Grant("tax domicile", "StHG Art. 4", ("person.official_name", "move_date")),),
    )
    issued = IssuedPseudonym(partner_id=subscriber.partner_id, sector=Sector.TAX, pseudonym="tax:abc")
    delivery = case_delivery(
        case_type="relocation",
        event_type="ch.lu.hub.relocation.move-reported.v1",
        data=MOVE,
        subscriber=subscriber,
        person_path="person",
        issued=issued,
    )
    assert delivery.subject is not None
    assert delivery.subject.sector_pseudonym == "tax:abc"
    assert delivery.subject.official_name == "Muster"
    assert delivery.subject.first_name is None
    assert delivery.data == {"move_date": "2026-12-01"}
    assert delivery.legal_basis == "StHG Art. 4"
