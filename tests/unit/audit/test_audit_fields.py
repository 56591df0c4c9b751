"""Which fields an audit entry names: exactly what the minimised delivery carries."""

from __future__ import annotations

from contracts import IssuedPseudonym, Sector
from services.registry.delivery import case_delivery, disclosed_fields
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
TAX = Subscriber(
    "CH/CAN/LU/steuerverwaltung",
    "tax",
    "hub.delivery.ch.can.lu.steuerverwaltung",
    (
        Grant(
            "assign the tax domicile",
            "StHG Art. 4",
            (
                "person.official_name",
                "person.first_name",
                "person.date_of_birth",
                "new_address",
                "arrival",
                "move_date",
            ),
            ("arrival-tax-office",),
        ),
    ),
)


def test_fields_are_the_delivered_leaves_and_the_granted_person_fields() -> None:
    issued = IssuedPseudonym(partner_id=TAX.partner_id, sector=Sector.TAX, pseudonym="tax:abc")
    delivery = case_delivery(
        case_type="relocation",
        event_type="ch.lu.hub.relocation.move-reported.v1",
        data=MOVE,
        subscriber=TAX,
        person_path="person",
        issued=issued,
    )
    assert disclosed_fields(delivery, "person") == (
        "arrival.bfs_number",
        "arrival.canton",
        "arrival.name",
        "move_date",
        "new_address.postal_code",
        "new_address.street",
        "new_address.town",
        "person.date_of_birth",
        "person.first_name",
        "person.official_name",
        "person.sector_pseudonym",
    )


def test_a_delivery_without_a_person_names_its_data_fields_only() -> None:
    completed = {
        "case_type": "relocation",
        "completed_at": "2026-12-02T10:00:00+00:00",
        "milestones": ["a", "b"],
    }
    closing = Grant("close", "StHG Art. 4", ("case_type", "milestones"))
    subscriber = Subscriber(TAX.partner_id, "tax", TAX.delivery_topic, (closing,))
    delivery = case_delivery(
        case_type="relocation",
        event_type="ch.lu.hub.case.completed.v1",
        data=completed,
        subscriber=subscriber,
        person_path=None,
        issued=None,
    )
    # A list is one field; what the subscription does not allow is not named.
    assert disclosed_fields(delivery, None) == ("case_type", "milestones")


def test_one_delivery_under_two_subscriptions_carries_their_union_and_each_accounts_for_its_own() -> None:
    """A municipality on both sides of a move within it: one delivery; each audit entry names
    the disclosed fields its subscription grants, together exactly what was delivered."""
    departure = Grant("record the departure", "RHG Art. 12", ("person.official_name", "new_address"))
    arrival = Grant(
        "register the arrival", "RHG Art. 11", ("person.first_name", "previous_address", "arrival")
    )
    lucerne = Subscriber("CH/MUN/1061/einwohnerdienste", "resident-registration", "t", (departure, arrival))
    sector = Sector.RESIDENT_REGISTRATION
    issued = IssuedPseudonym(partner_id=lucerne.partner_id, sector=sector, pseudonym="rr:x")

    def fields(subscriber: Subscriber) -> set[str]:
        delivery = case_delivery(
            case_type="relocation",
            event_type="ch.lu.hub.relocation.move-reported.v1",
            data=MOVE,
            subscriber=subscriber,
            person_path="person",
            issued=issued,
        )
        return set(disclosed_fields(delivery, "person"))

    both = fields(lucerne)
    as_departure = fields(Subscriber(lucerne.partner_id, "resident-registration", "t", (departure,)))
    as_arrival = fields(Subscriber(lucerne.partner_id, "resident-registration", "t", (arrival,)))
    assert as_departure | as_arrival == both
    assert "new_address.street" in as_departure - as_arrival
    assert "previous_address.street" in as_arrival - as_departure
    assert as_departure & as_arrival == {"person.sector_pseudonym"}  # who it is about, under each
    assert (lucerne.purpose, lucerne.legal_basis) == (
        "record the departure | register the arrival",
        "RHG Art. 12 | RHG Art. 11",
    )
