"""The demo's agencies answer a move as the party they are to it, and the intercantonal variant
plays a move from Lucerne to Zug with both cantons' tax offices."""

from __future__ import annotations

from contracts import (
    EMMEN,
    KRIENS,
    LUCERNE,
    ZUG,
    ArrivalRegistered,
    CaseDelivery,
    CaseRejected,
    DepartureConfirmed,
    Envelope,
    MoveReported,
    TaxRecordUpdated,
)
from hub.cli.main import parser
from hub.local.demo import (
    EMMEN_OFFICE,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    TAX_OFFICE,
    ZUG_OFFICE,
    ZUG_TAX_OFFICE,
    demo_person,
    move_parties,
    move_report,
    relocation_responders,
)
from hub.local.partner_client import Delivery


def _move_delivered_to(partner: str, departure: object, arrival: object) -> Delivery:
    report = move_report(demo_person(), departure=departure, arrival=arrival)  # type: ignore[arg-type]
    delivery = CaseDelivery(
        case_type="relocation",
        event_type_delivered=MoveReported.event_type,
        recipient=partner,
        purpose="test",
        legal_basis="test",
        data=report.model_dump(mode="json", include={"departure", "arrival", "move_date"}),
    )
    envelope = Envelope.new(delivery, source="urn:ch:lu:hub:service:registry", business_process_id="eumzug-1")
    return Delivery(envelope, delivery, trace_id="0" * 32)


def test_the_parties_of_a_move_are_both_municipalities_and_the_tax_offices_it_concerns() -> None:
    assert move_parties(KRIENS, LUCERNE) == (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    assert move_parties(LUCERNE, ZUG) == (LUCERNE_OFFICE, ZUG_OFFICE, ZUG_TAX_OFFICE, TAX_OFFICE)
    assert move_parties(EMMEN, LUCERNE) == (EMMEN_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)


def test_the_responders_are_the_parties_of_the_variants_move() -> None:
    assert set(relocation_responders("main")) == {KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE}
    assert set(relocation_responders("intercantonal")) == {
        LUCERNE_OFFICE,
        ZUG_OFFICE,
        TAX_OFFICE,
        ZUG_TAX_OFFICE,
    }
    assert set(relocation_responders("main", (EMMEN, LUCERNE))) == {EMMEN_OFFICE, LUCERNE_OFFICE, TAX_OFFICE}


def test_a_residents_office_answers_the_side_of_the_move_it_is_on() -> None:
    respond = relocation_responders("intercantonal")
    [departed] = respond[LUCERNE_OFFICE](_move_delivered_to(LUCERNE_OFFICE, LUCERNE, ZUG))
    assert isinstance(departed, DepartureConfirmed)
    assert departed.municipality == LUCERNE
    [arrived] = respond[ZUG_OFFICE](_move_delivered_to(ZUG_OFFICE, LUCERNE, ZUG))
    assert isinstance(arrived, ArrivalRegistered)
    assert arrived.municipality == ZUG
    kriens = relocation_responders("main")[KRIENS_OFFICE]
    assert kriens(_move_delivered_to(KRIENS_OFFICE, LUCERNE, ZUG)) == ()  # not its move: no answer
    assert isinstance(
        respond[ZUG_TAX_OFFICE](_move_delivered_to(ZUG_TAX_OFFICE, LUCERNE, ZUG))[0], TaxRecordUpdated
    )


def test_a_variant_changes_the_arrivals_answer_only() -> None:
    respond = relocation_responders("rejection")
    [rejected] = respond[LUCERNE_OFFICE](_move_delivered_to(LUCERNE_OFFICE, KRIENS, LUCERNE))
    assert isinstance(rejected, CaseRejected)
    assert rejected.rejected_by == LUCERNE_OFFICE
    [departed] = respond[KRIENS_OFFICE](_move_delivered_to(KRIENS_OFFICE, KRIENS, LUCERNE))
    assert isinstance(departed, DepartureConfirmed)


def test_hub_demo_offers_the_intercantonal_variant() -> None:
    assert parser().parse_args(["demo", "--variant", "intercantonal"]).variant == "intercantonal"
