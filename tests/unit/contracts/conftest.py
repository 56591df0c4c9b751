"""Sample contracts shared by the contracts unit tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contracts import (
    KRIENS,
    LUCERNE,
    Address,
    ArrivalRegistered,
    CaseCompleted,
    CaseRejected,
    Channel,
    Contact,
    Contract,
    DeliveryStatus,
    DepartureConfirmed,
    IssuedPseudonym,
    Language,
    LocalPersonId,
    MoveReported,
    MoveReportedDelivery,
    NotificationRequested,
    NotificationStatusChanged,
    Person,
    PseudonymizedPerson,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
    Sector,
    Sex,
    TaxRecordUpdated,
    ahvn13_check_digit,
)

TAX_OFFICE = "CH/CAN/LU/steuerverwaltung"


@pytest.fixture
def valid_vn() -> str:
    first12 = "756987654321"
    return first12 + str(ahvn13_check_digit(first12))


@pytest.fixture
def person(valid_vn: str) -> Person:
    return Person(
        vn=valid_vn,
        local_person_id=LocalPersonId(category="LU.EWK", id="4711"),
        official_name="Muster",
        first_name="Anna",
        sex=Sex.FEMALE,
        date_of_birth=date(1990, 5, 17),
    )


@pytest.fixture
def move_reported(person: Person) -> MoveReported:
    return MoveReported(
        person=person,
        contact=Contact(email="anna.muster@example.ch", phone="+41791234567"),
        departure=KRIENS,
        arrival=LUCERNE,
        previous_address=Address(
            street="Schachenstrasse",
            house_number="1",
            postal_code="6010",
            town="Kriens",
        ),
        new_address=Address(street="Hirschmattstrasse", postal_code="6003", town="Luzern"),
        move_date=date(2025, 3, 1),
    )


@pytest.fixture
def samples(move_reported: MoveReported, person: Person) -> dict[str, Contract]:
    """One valid instance per catalogue entry, keyed by event type."""
    pseudonymized = PseudonymizedPerson(
        sector_pseudonym="tax-3f2a9c",
        official_name=person.official_name,
        first_name=person.first_name,
        sex=person.sex,
        date_of_birth=person.date_of_birth,
    )
    contracts: list[Contract] = [
        move_reported,
        DepartureConfirmed(municipality=KRIENS, confirmed_on=date(2025, 2, 10)),
        ArrivalRegistered(municipality=LUCERNE, registered_on=date(2025, 3, 2), remarks="ok"),
        TaxRecordUpdated(updated_on=date(2025, 3, 5)),
        CaseCompleted(
            completed_at=datetime(2025, 3, 5, 12, 0, tzinfo=UTC),
            milestones=(
                "departure-confirmed",
                "arrival-registered",
                "tax-record-updated",
            ),
        ),
        CaseRejected(rejected_by="CH/MUN/1061/einwohnerdienste", reason="duplicate report"),
        MoveReportedDelivery(
            recipient=TAX_OFFICE,
            person=pseudonymized,
            departure=KRIENS,
            arrival=LUCERNE,
            move_date=date(2025, 3, 1),
        ),
        PseudonymsRequested(
            person=person,
            recipients=(Recipient(partner_id=TAX_OFFICE, sector=Sector.TAX),),
        ),
        PseudonymsIssued(
            match="exact-vn",
            pseudonyms=(IssuedPseudonym(partner_id=TAX_OFFICE, sector=Sector.TAX, pseudonym="tax-3f2a9c"),),
        ),
        NotificationRequested(
            notification_id="n-1",
            recipient="anna.muster@example.ch",
            language=Language.DE,
            template="relocation.received",
            placeholders={"case": "case-1"},
        ),
        NotificationStatusChanged(
            notification_id="n-1",
            channel=Channel.EMAIL,
            status=DeliveryStatus.DELIVERED,
            template="relocation.received",
        ),
    ]
    return {type(contract).event_type: contract for contract in contracts}
