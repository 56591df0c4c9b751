"""Sample contracts shared by the contracts unit tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contracts import (
    KRIENS,
    LUCERNE,
    Address,
    ArrivalRegistered,
    BuildingProject,
    CaseActionRequired,
    CaseCompleted,
    CaseDelivery,
    CaseEscalated,
    CasePartyMissing,
    CaseRejected,
    Channel,
    ConsultationRequested,
    Contact,
    Contract,
    DeliveredPerson,
    DeliveryStatus,
    DepartureConfirmed,
    EnvironmentOpinionGiven,
    InsuranceOpinionGiven,
    IssuedPseudonym,
    Jurisdiction,
    Language,
    LocalPersonId,
    MoveReported,
    NotificationRequested,
    NotificationStatusChanged,
    Opinion,
    Parcel,
    Person,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
    Sector,
    SetSubscription,
    Sex,
    TaxRecordUpdated,
    ahvn13_check_digit,
)
from contracts.admin import ChangePartnerStatus, RegisterPartner, RegisterPartnerKey, RevokePartnerKey
from contracts.audit import AuditHeadAnchored
from contracts.identity import (
    PartnerKeyRegistered,
    PartnerKeyRevoked,
    PartnerRegistered,
    PartnerStatusChanged,
)

TAX_OFFICE = "CH/CAN/LU/steuerverwaltung"
LUCERNE_CANTON = Jurisdiction(level="canton", canton="LU")
PUBLIC_KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="  # an Ed25519 public key (RFC 8032, test 1)


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
    pseudonymized = DeliveredPerson(
        sector_pseudonym="tax-3f2a9c",
        official_name=person.official_name,
        first_name=person.first_name,
    )
    contracts: list[Contract] = [
        move_reported,
        DepartureConfirmed(municipality=KRIENS, confirmed_on=date(2025, 2, 10)),
        ArrivalRegistered(municipality=LUCERNE, registered_on=date(2025, 3, 2), remarks="ok"),
        TaxRecordUpdated(updated_on=date(2025, 3, 5)),
        CaseCompleted(
            case_type="relocation",
            completed_at=datetime(2025, 3, 5, 12, 0, tzinfo=UTC),
            milestones=(
                "departure-confirmed",
                "arrival-registered",
                "tax-record-updated",
            ),
        ),
        CaseRejected(rejected_by="CH/MUN/1061/einwohnerdienste", reason="duplicate report"),
        CaseActionRequired(
            requested_by="CH/MUN/1061/einwohnerdienste",
            action="Bitte reichen Sie den Mietvertrag ein.",
            due_on=date(2026, 12, 15),
        ),
        CaseDelivery(
            case_type="relocation",
            event_type_delivered=MoveReported.event_type,
            recipient=TAX_OFFICE,
            purpose="assign the tax domicile",
            legal_basis="StHG Art. 4",
            subject=pseudonymized,
            data={"move_date": "2025-03-01"},
        ),
        CaseEscalated(
            case_type="relocation",
            deadline=datetime(2025, 3, 15, 12, 0, tzinfo=UTC),
            missing_milestones=("arrival-registered",),
        ),
        AuditHeadAnchored(seq=42, entry_hash="ab" * 32, anchored_at=datetime(2026, 12, 3, 8, 0, tzinfo=UTC)),
        CasePartyMissing(
            case_type="relocation",
            slot="arrival-municipality",
            role="municipality",
            jurisdiction=Jurisdiction(level="municipality", bfs_number=1058, canton="LU"),
            reason="no active partner with role municipality for municipality 1058 (LU)",
        ),
        SetSubscription(
            partner_id=TAX_OFFICE,
            subscribed_event_type=MoveReported.event_type,
            case_type="relocation",
            purpose="assign the tax domicile",
            legal_basis="StHG Art. 4",
            fields=("person.official_name", "move_date"),
            retention_days=3650,
            status="approved",
        ),
        ConsultationRequested(
            applicant=person,
            contact=Contact(email="anna.muster@example.ch"),
            parcel=Parcel(municipality=LUCERNE, parcel_number="1234"),
            project=BuildingProject(
                description="Wintergarten",
                address=Address(street="Hirschmattstrasse", postal_code="6003", town="Luzern"),
            ),
            dossier_number="BG-1",
        ),
        EnvironmentOpinionGiven(opinion=Opinion.APPROVE),
        RegisterPartner(
            partner_id=TAX_OFFICE,
            name="Dienststelle Steuern",
            sector=Sector.TAX,
            roles=("tax-office",),
            jurisdiction=LUCERNE_CANTON,
        ),
        ChangePartnerStatus(partner_id=TAX_OFFICE, status="suspended", reason="key compromised"),
        PartnerRegistered(
            partner_id=TAX_OFFICE,
            name="Dienststelle Steuern",
            sector=Sector.TAX,
            roles=("tax-office",),
            jurisdiction=LUCERNE_CANTON,
            status="active",
        ),
        PartnerStatusChanged(partner_id=TAX_OFFICE, status="active"),
        RegisterPartnerKey(
            partner_id=TAX_OFFICE,
            key_id="tax-2026a",
            public_key=PUBLIC_KEY,
            valid_until=datetime(2027, 1, 1, tzinfo=UTC),
        ),
        RevokePartnerKey(partner_id=TAX_OFFICE, key_id="tax-2026a", reason="key compromised"),
        PartnerKeyRegistered(
            partner_id=TAX_OFFICE,
            key_id="tax-2026a",
            public_key=PUBLIC_KEY,
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        PartnerKeyRevoked(
            partner_id=TAX_OFFICE, key_id="tax-2026a", revoked_at=datetime(2026, 2, 1, tzinfo=UTC)
        ),
        InsuranceOpinionGiven(opinion=Opinion.OBJECT, conditions=("Brandschutz",)),
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
