from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from contracts import (
    KRIENS,
    LUCERNE,
    Address,
    Contact,
    Language,
    LocalPersonId,
    MemberClass,
    Municipality,
    ParticipantId,
    Person,
    Sex,
)


def test_participant_id_round_trips_through_its_string_form() -> None:
    participant = ParticipantId.parse("CH/MUN/1061/einwohnerdienste")
    assert participant == ParticipantId(
        instance="CH",
        member_class=MemberClass.MUNICIPALITY,
        member_code="1061",
        subsystem="einwohnerdienste",
    )
    assert str(participant) == "CH/MUN/1061/einwohnerdienste"
    assert ParticipantId.parse(str(participant)) == participant


@pytest.mark.parametrize(
    "text",
    [
        "CH/MUN/1061",
        "CH/MUN/1061/einwohnerdienste/extra",
        "CH/XYZ/1061/einwohnerdienste",
        "CH/MUN//einwohnerdienste",
        "CH/MUN/10 61/einwohnerdienste",
        "CH/MUN/1061/a:b",
    ],
)
def test_rejects_malformed_participant_ids(text: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)participant|pattern|member|instance|subsystem"):
        ParticipantId.parse(text)


def test_participant_id_can_key_a_dict() -> None:
    routes = {ParticipantId.parse("CH/CAN/LU/steuerverwaltung"): "tax"}
    assert routes[ParticipantId.parse("CH/CAN/LU/steuerverwaltung")] == "tax"


def test_municipality_constants_carry_their_bfs_numbers() -> None:
    assert (KRIENS.bfs_number, KRIENS.canton) == (1059, "LU")
    assert (LUCERNE.bfs_number, LUCERNE.name) == (1061, "Luzern")


@pytest.mark.parametrize("canton", ["lu", "LUZ", "L"])
def test_rejects_canton_that_is_not_two_capital_letters(canton: str) -> None:
    with pytest.raises(ValidationError):
        Municipality(bfs_number=1061, name="Luzern", canton=canton)


def test_rejects_bfs_number_out_of_range() -> None:
    with pytest.raises(ValidationError):
        Municipality(bfs_number=10000, name="Nowhere", canton="LU")


def test_swiss_address_needs_a_four_digit_postal_code() -> None:
    with pytest.raises(ValidationError, match="4 digits"):
        Address(street="Bahnhofstrasse", postal_code="60030", town="Luzern")


def test_foreign_address_keeps_its_own_postal_code_format() -> None:
    address = Address(street="Unter den Linden", postal_code="10117", town="Berlin", country="DE")
    assert address.postal_code == "10117"


def test_contact_defaults_to_german_and_checks_the_phone_format() -> None:
    assert Contact(email="anna@example.ch").language is Language.DE
    with pytest.raises(ValidationError):
        Contact(email="anna@example.ch", phone="079 123 45 67")


def test_rejects_contact_with_invalid_email() -> None:
    with pytest.raises(ValidationError):
        Contact(email="not-an-address")


def test_person_normalises_a_dotted_vn() -> None:
    person = Person(
        vn="756.1234.5678.97",
        official_name="Muster",
        first_name="Anna",
        sex=Sex.FEMALE,
        date_of_birth=date(1990, 5, 17),
    )
    assert person.vn == "7561234567897"


def test_sex_uses_the_ech_0044_codes() -> None:
    assert [sex.value for sex in Sex] == ["1", "2", "3"]


def test_value_objects_are_frozen() -> None:
    local_id = LocalPersonId(category="CH.ZAR", id="1")
    with pytest.raises(ValidationError):
        setattr(local_id, "id", "2")  # noqa: B010 - mutation is the point


def test_value_objects_are_closed() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        LocalPersonId.model_validate({"category": "CH.ZAR", "id": "1", "note": "x"})


def test_rejects_swiss_postal_code_written_in_non_ascii_digits() -> None:
    with pytest.raises(ValidationError, match="4 digits"):
        Address(
            street="Bahnhofstrasse",
            postal_code="\u0666\u0660\u0660\u0663",
            town="Luzern",
        )
