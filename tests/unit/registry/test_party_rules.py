"""Who is a party to a case, without I/O: slots resolved from the opening event and the
register, who may act, which subscriptions a party receives under, and when a case is
complete."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts import EMMEN, KRIENS, LUCERNE, ZUG, Jurisdiction, Municipality
from services.registry.domain import ProcessDefinition, Processes, load_processes
from services.registry.parties_domain import (
    Candidate,
    Party,
    fill_slot,
    may_reject,
    may_request_action,
    milestones_reached,
    not_a_party,
    required_milestones,
    resolve_parties,
    slots_of,
    unfilled,
)
from services.registry.subscriptions_domain import (
    ALL_CASES,
    TEXT_LIMIT,
    Grant,
    Subscription,
    applying,
    delivered_basis,
    delivered_fields,
    delivered_text,
    grants_by_partner,
    undefined_slot,
)

HORW = Municipality(bfs_number=1058, name="Horw", canton="LU")


def municipality(place: Municipality) -> Jurisdiction:
    return Jurisdiction(level="municipality", bfs_number=place.bfs_number, canton=place.canton)


def canton(abbreviation: str) -> Jurisdiction:
    return Jurisdiction(level="canton", canton=abbreviation)


PORTAL = Candidate("CH/CAN/LU/eportal", ("portal",), canton("LU"), True)
KRIENS_OFFICE = Candidate("CH/MUN/1059/einwohnerdienste", ("municipality",), municipality(KRIENS), True)
LUCERNE_OFFICE = Candidate("CH/MUN/1061/einwohnerdienste", ("municipality",), municipality(LUCERNE), True)
EMMEN_OFFICE = Candidate("CH/MUN/1024/einwohnerdienste", ("municipality",), municipality(EMMEN), True)
ZUG_OFFICE = Candidate("CH/MUN/1711/einwohnerdienste", ("municipality",), municipality(ZUG), True)
LU_TAX = Candidate("CH/CAN/LU/steuerverwaltung", ("tax-office",), canton("LU"), True)
ZG_TAX = Candidate("CH/CAN/ZG/steuerverwaltung", ("tax-office",), canton("ZG"), True)
BUILDING = Candidate("CH/MUN/1061/baudirektion", ("building-authority",), municipality(LUCERNE), True)
ENVIRONMENT = Candidate("CH/CAN/LU/uwe", ("environment-office",), canton("LU"), True)
INSURANCE = Candidate("CH/CAN/LU/gvl", ("building-insurance",), canton("LU"), True)
REGISTER = (
    PORTAL,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    EMMEN_OFFICE,
    ZUG_OFFICE,
    LU_TAX,
    ZG_TAX,
    BUILDING,
    ENVIRONMENT,
    INSURANCE,
)

MOVE = "ch.lu.hub.relocation.move-reported.v1"
DEPARTED = "ch.lu.hub.relocation.departure-confirmed.v1"
ARRIVED = "ch.lu.hub.relocation.arrival-registered.v1"
TAXED = "ch.lu.hub.relocation.tax-record-updated.v1"


@pytest.fixture(scope="module")
def processes() -> Processes:
    return load_processes()


def move(departure: Municipality, arrival: Municipality) -> dict[str, Any]:
    """The opening data as the registry stores it (the AHVN13 already removed)."""
    return {
        "person": {"official_name": "Muster", "first_name": "Anna"},
        "departure": departure.model_dump(),
        "arrival": arrival.model_dump(),
        "move_date": "2026-12-01",
    }


def relocation(
    processes: Processes,
    departure: Municipality,
    arrival: Municipality,
    register: tuple[Candidate, ...] = REGISTER,
) -> tuple[Party, ...]:
    return resolve_parties(
        processes["relocation"], move(departure, arrival), opener=PORTAL, partners=register
    )


def filled_by(parties: tuple[Party, ...]) -> dict[str, str | None]:
    return {party.slot: party.partner_id for party in parties}


# --- resolving the slots -----------------------------------------------------------------


def test_a_move_within_the_canton_has_two_municipalities_and_the_cantons_tax_office(
    processes: Processes,
) -> None:
    parties = relocation(processes, KRIENS, LUCERNE)
    assert filled_by(parties) == {
        "opener": PORTAL.partner_id,
        "departure-municipality": KRIENS_OFFICE.partner_id,
        "arrival-municipality": LUCERNE_OFFICE.partner_id,
        "arrival-tax-office": LU_TAX.partner_id,
    }  # the departure tax office does not apply: it would be the same office
    assert [p.jurisdiction for p in parties[1:]] == [
        municipality(KRIENS),
        municipality(LUCERNE),
        canton("LU"),
    ]
    assert unfilled(parties) == ()


def test_a_move_across_cantons_adds_the_departure_cantons_tax_office(processes: Processes) -> None:
    parties = relocation(processes, LUCERNE, ZUG)
    assert filled_by(parties) == {
        "opener": PORTAL.partner_id,
        "departure-municipality": LUCERNE_OFFICE.partner_id,
        "arrival-municipality": ZUG_OFFICE.partner_id,
        "arrival-tax-office": ZG_TAX.partner_id,
        "departure-tax-office": LU_TAX.partner_id,
    }


def test_uninvolved_municipalities_fill_no_slot_of_a_move(processes: Processes) -> None:
    parties = relocation(processes, EMMEN, LUCERNE)
    partners = set(filled_by(parties).values())
    assert EMMEN_OFFICE.partner_id in partners
    assert KRIENS_OFFICE.partner_id not in partners
    assert ZUG_OFFICE.partner_id not in partners
    assert ZG_TAX.partner_id not in partners
    assert slots_of(parties, KRIENS_OFFICE.partner_id) == ()


def test_a_slot_no_partner_fills_stays_unfilled_and_says_what_it_needs(processes: Processes) -> None:
    parties = relocation(processes, KRIENS, HORW)
    [missing] = unfilled(parties)
    assert (missing.slot, missing.role, missing.partner_id) == ("arrival-municipality", "municipality", None)
    assert missing.jurisdiction == municipality(HORW)
    assert missing.unfilled_reason == "no active partner with role municipality for municipality 1058 (LU)"
    assert missing.describe() == "arrival-municipality (municipality, municipality 1058 (LU))"
    assert filled_by(parties)["departure-municipality"] == KRIENS_OFFICE.partner_id


def test_a_suspended_partner_fills_no_slot(processes: Processes) -> None:
    suspended = Candidate(LUCERNE_OFFICE.partner_id, ("municipality",), municipality(LUCERNE), False)
    register = tuple(suspended if c is LUCERNE_OFFICE else c for c in REGISTER)
    parties = relocation(processes, KRIENS, LUCERNE, register)
    assert [p.slot for p in unfilled(parties)] == ["arrival-municipality"]


def test_two_partners_fitting_one_slot_fill_it_neither_and_are_named_as_the_reason(
    processes: Processes,
) -> None:
    second = Candidate("CH/MUN/1061/einwohnerdienste-neu", ("municipality",), municipality(LUCERNE), True)
    parties = relocation(processes, KRIENS, LUCERNE, (*REGISTER, second))
    [missing] = unfilled(parties)
    assert missing.slot == "arrival-municipality"
    assert missing.unfilled_reason is not None
    assert missing.unfilled_reason.startswith(
        "2 active partners with role municipality for municipality 1061"
    )


def test_the_role_and_the_whole_jurisdiction_must_fit(processes: Processes) -> None:
    # Lucerne's building department has the BFS number but not the role; a canton's office
    # has the canton but is no municipality; a BFS number claimed for another canton is nobody's.
    register = (PORTAL, BUILDING, LU_TAX, KRIENS_OFFICE)
    parties = relocation(processes, KRIENS, LUCERNE, register)
    assert [p.slot for p in unfilled(parties)] == ["arrival-municipality"]
    wrong_canton = Municipality(bfs_number=1061, name="Luzern", canton="ZG")
    parties = relocation(processes, KRIENS, wrong_canton)
    assert filled_by(parties)["arrival-municipality"] is None
    assert filled_by(parties)["arrival-tax-office"] == ZG_TAX.partner_id


def test_a_partner_without_a_jurisdiction_fills_no_slot() -> None:
    unplaced = Candidate("CH/MUN/1061/einwohnerdienste", ("municipality",), None, True)
    party = fill_slot("arrival-municipality", "municipality", municipality(LUCERNE), [unplaced])
    assert party.partner_id is None


def test_a_slot_the_opening_event_names_no_jurisdiction_for_is_unfilled_not_skipped(
    processes: Processes,
) -> None:
    data = move(KRIENS, LUCERNE)
    del data["departure"]
    parties = resolve_parties(processes["relocation"], data, opener=PORTAL, partners=REGISTER)
    missing = {p.slot: p.unfilled_reason for p in unfilled(parties)}
    # The departure tax office cannot be compared with the arrival's: it stays, unfilled.
    assert missing == {
        "departure-municipality": "the opening event names no jurisdiction for it",
        "departure-tax-office": "the opening event names no jurisdiction for it",
    }


def test_a_building_permit_names_the_city_and_the_parcels_canton(processes: Processes) -> None:
    data = {"parcel": {"municipality": LUCERNE.model_dump(), "parcel_number": "1234"}}
    parties = resolve_parties(processes["building-permit"], data, opener=BUILDING, partners=REGISTER)
    assert filled_by(parties) == {
        "opener": BUILDING.partner_id,
        "building-department": BUILDING.partner_id,
        "environment-office": ENVIRONMENT.partner_id,
        "building-insurance": INSURANCE.partner_id,
    }
    assert slots_of(parties, BUILDING.partner_id) == ("opener", "building-department")


# --- acting ------------------------------------------------------------------------------


def test_a_milestone_counts_only_from_the_partner_filling_its_slot(processes: Processes) -> None:
    process = processes["relocation"]
    parties = relocation(processes, EMMEN, LUCERNE)
    assert milestones_reached(process, parties, ARRIVED, KRIENS_OFFICE.partner_id) == ()  # uninvolved
    assert milestones_reached(process, parties, ARRIVED, EMMEN_OFFICE.partner_id) == ()  # the other side
    assert [m.name for m in milestones_reached(process, parties, ARRIVED, LUCERNE_OFFICE.partner_id)] == [
        "arrival-registered"
    ]
    assert [m.name for m in milestones_reached(process, parties, DEPARTED, EMMEN_OFFICE.partner_id)] == [
        "departure-confirmed"
    ]


def test_each_tax_office_of_a_move_across_cantons_reaches_its_own_milestone(processes: Processes) -> None:
    process = processes["relocation"]
    parties = relocation(processes, LUCERNE, ZUG)
    assert [m.name for m in milestones_reached(process, parties, TAXED, ZG_TAX.partner_id)] == [
        "tax-record-updated"
    ]
    assert [m.name for m in milestones_reached(process, parties, TAXED, LU_TAX.partner_id)] == [
        "departure-tax-record-updated"
    ]
    within = relocation(processes, KRIENS, LUCERNE)
    assert milestones_reached(process, within, TAXED, ZG_TAX.partner_id) == ()


def test_a_move_within_one_municipality_makes_it_both_parties(processes: Processes) -> None:
    process = processes["relocation"]
    parties = relocation(processes, LUCERNE, LUCERNE)
    assert slots_of(parties, LUCERNE_OFFICE.partner_id) == ("departure-municipality", "arrival-municipality")
    assert [m.name for m in milestones_reached(process, parties, DEPARTED, LUCERNE_OFFICE.partner_id)] == [
        "departure-confirmed"
    ]


def test_only_a_working_party_may_reject_or_ask_the_citizen(processes: Processes) -> None:
    process = processes["relocation"]
    parties = relocation(processes, EMMEN, LUCERNE)
    for party in (EMMEN_OFFICE, LUCERNE_OFFICE, LU_TAX):
        assert may_reject(process, parties, party.partner_id)
        assert may_request_action(process, parties, party.partner_id)
    for outsider in (KRIENS_OFFICE, ZUG_OFFICE, ZG_TAX):
        assert not may_reject(process, parties, outsider.partner_id)
        assert not may_request_action(process, parties, outsider.partner_id)
    # The portal opened the case and is a party, but does none of the work.
    assert not may_reject(process, parties, PORTAL.partner_id)
    assert not may_request_action(process, parties, PORTAL.partner_id)


def test_the_refusal_names_the_partner_the_slots_and_the_step_but_no_other_party() -> None:
    reason = not_a_party(KRIENS_OFFICE.partner_id, "relocation", ["arrival-municipality"], ARRIVED)
    assert reason == (
        "CH/MUN/1059/einwohnerdienste is not a party to this relocation case as arrival-municipality, "
        f"which {ARRIVED} needs"
    )
    assert LUCERNE_OFFICE.partner_id not in reason


# --- completing --------------------------------------------------------------------------


def test_a_case_waits_for_the_milestones_of_the_slots_that_apply(processes: Processes) -> None:
    process = processes["relocation"]
    within = required_milestones(process, relocation(processes, KRIENS, LUCERNE))
    assert within == {"departure-confirmed", "arrival-registered", "tax-record-updated"}
    across = required_milestones(process, relocation(processes, LUCERNE, ZUG))
    assert across == within | {"departure-tax-record-updated"}
    # An unfilled slot still applies: the case cannot complete without its milestone.
    assert "arrival-registered" in required_milestones(process, relocation(processes, KRIENS, HORW))


# --- receiving ---------------------------------------------------------------------------


LUCERNE_ID = LUCERNE_OFFICE.partner_id
DEPARTURE = Subscription(
    LUCERNE_ID,
    "record the departure",
    "RHG Art. 12",
    ("person.official_name", "new_address", "move_date"),
    slot="departure-municipality",
)
ARRIVAL = Subscription(
    LUCERNE_ID,
    "register the arrival",
    "RHG Art. 11",
    ("person.official_name", "previous_address", "new_address", "move_date"),
    slot="arrival-municipality",
)
ANY_SLOT = Subscription(LUCERNE_ID, "keep the register", "RHG Art. 8", ("person.official_name", "move_date"))
STATISTICS = Subscription("CH/CAN/LU/lustat", "migration statistics", "StatG LU § 5", ("arrival",), ALL_CASES)


def grants_of(
    processes: Processes, subscriptions: tuple[Subscription, ...], move_: tuple[Municipality, Municipality]
) -> dict[str, tuple[Grant, ...]]:
    return grants_by_partner(subscriptions, relocation(processes, *move_))


def test_a_slot_specific_subscription_applies_only_where_the_partner_fills_its_slot(
    processes: Processes,
) -> None:
    both = (DEPARTURE, ARRIVAL)
    [as_departure] = grants_of(processes, both, (LUCERNE, ZUG))[LUCERNE_ID]
    assert (as_departure.purpose, as_departure.legal_basis) == ("record the departure", "RHG Art. 12")
    assert as_departure.fields == DEPARTURE.fields
    assert as_departure.basis == "party: departure-municipality"
    [as_arrival] = grants_of(processes, both, (KRIENS, LUCERNE))[LUCERNE_ID]
    assert (as_arrival.purpose, as_arrival.legal_basis) == ("register the arrival", "RHG Art. 11")
    assert as_arrival.basis == "party: arrival-municipality"


def test_a_subscription_for_a_slot_the_partner_does_not_fill_gives_nothing(processes: Processes) -> None:
    # Lucerne is the arrival of a move from Kriens: its departure subscription does not apply.
    assert grants_of(processes, (DEPARTURE,), (KRIENS, LUCERNE)) == {}
    assert applying((DEPARTURE,), ("arrival-municipality",)) == ()
    # ... nor any of its subscriptions to a move it is no party to, slot or not.
    assert grants_of(processes, (DEPARTURE, ARRIVAL, ANY_SLOT), (KRIENS, EMMEN)) == {}


def test_a_subscription_naming_no_slot_serves_every_slot_the_partner_fills(processes: Processes) -> None:
    [within] = grants_of(processes, (ANY_SLOT,), (LUCERNE, LUCERNE))[LUCERNE_ID]
    assert within.basis == "party: departure-municipality, arrival-municipality"
    [as_arrival] = grants_of(processes, (ANY_SLOT,), (KRIENS, LUCERNE))[LUCERNE_ID]
    assert as_arrival.basis == "party: arrival-municipality"
    assert (as_arrival.purpose, as_arrival.fields) == (ANY_SLOT.purpose, ANY_SLOT.fields)


def test_a_subscription_naming_no_slot_gives_way_to_one_naming_the_slot(processes: Processes) -> None:
    [as_departure] = grants_of(processes, (ANY_SLOT, DEPARTURE), (LUCERNE, ZUG))[LUCERNE_ID]
    assert as_departure.purpose == "record the departure"  # not the slot-less one as well
    [as_arrival] = grants_of(processes, (ANY_SLOT, DEPARTURE), (KRIENS, LUCERNE))[LUCERNE_ID]
    assert as_arrival.purpose == "keep the register"  # no arrival subscription: the slot-less one
    # Both sides of a move within Lucerne: each slot is served by one subscription only.
    within = grants_of(processes, (ANY_SLOT, DEPARTURE), (LUCERNE, LUCERNE))[LUCERNE_ID]
    assert [(g.purpose, g.basis) for g in within] == [
        ("record the departure", "party: departure-municipality"),
        ("keep the register", "party: arrival-municipality"),
    ]


def test_a_partner_filling_two_slots_is_served_once_under_both_subscriptions(processes: Processes) -> None:
    # Listed arrival first: the grants follow the case's slots, departure first.
    grants = grants_of(processes, (ARRIVAL, DEPARTURE), (LUCERNE, LUCERNE))[LUCERNE_ID]
    assert [g.basis for g in grants] == ["party: departure-municipality", "party: arrival-municipality"]
    assert delivered_fields(grants) == (
        "person.official_name",
        "new_address",
        "move_date",
        "previous_address",
    )
    assert delivered_text(g.purpose for g in grants) == "record the departure | register the arrival"
    assert delivered_text(g.legal_basis for g in grants) == "RHG Art. 12 | RHG Art. 11"
    assert delivered_basis(grants) == "party: departure-municipality, arrival-municipality"


def test_an_all_cases_subscription_applies_to_every_case_party_or_not(processes: Processes) -> None:
    for move_ in ((KRIENS, LUCERNE), (EMMEN, ZUG)):
        [grant] = grants_of(processes, (STATISTICS,), move_)[STATISTICS.partner_id]
        assert (grant.basis, grant.slots) == (ALL_CASES, ())
    # A party with an all-cases subscription too receives once, under both, all-cases last.
    everywhere = Subscription(LUCERNE_ID, "statistics", "StatG LU § 5", ("arrival",), ALL_CASES)
    grants = grants_of(processes, (everywhere, ARRIVAL), (KRIENS, LUCERNE))[LUCERNE_ID]
    assert [g.basis for g in grants] == ["party: arrival-municipality", ALL_CASES]
    assert delivered_basis(grants) == f"party: arrival-municipality; {ALL_CASES}"
    assert grants_of(processes, (everywhere, ARRIVAL), (LUCERNE, ZUG))[LUCERNE_ID] == (
        Grant("statistics", "StatG LU § 5", ("arrival",)),
    )


def test_each_partner_is_routed_on_the_slots_it_fills(processes: Processes) -> None:
    tax = Subscription(LU_TAX.partner_id, "assign the tax domicile", "StHG Art. 4", ("move_date",))
    kriens = Subscription(KRIENS_OFFICE.partner_id, "record the departure", "RHG Art. 12", ("move_date",))
    routed = grants_of(processes, (tax, kriens, DEPARTURE, ARRIVAL), (KRIENS, LUCERNE))
    assert {partner: [g.basis for g in grants] for partner, grants in routed.items()} == {
        LU_TAX.partner_id: ["party: arrival-tax-office"],
        KRIENS_OFFICE.partner_id: ["party: departure-municipality"],
        LUCERNE_ID: ["party: arrival-municipality"],
    }


def test_a_delivery_too_long_for_every_purpose_is_cut_visibly() -> None:
    long = "x" * 300
    text = delivered_text([long, "y" * 300, long])
    assert len(text) == TEXT_LIMIT
    assert text.startswith(long + " | ")
    assert text.endswith("…")
    assert delivered_text(["record the departure"] * 2) == "record the departure"


def test_a_subscription_may_name_only_a_slot_its_case_type_defines(processes: Processes) -> None:
    assert undefined_slot(processes, "relocation", "departure-tax-office") is None
    assert undefined_slot(processes, None, None) is None
    assert undefined_slot(processes, "relocation", "departure-office") == (
        "the relocation case type has no party slot departure-office; its slots: opener, "
        "departure-municipality, arrival-municipality, arrival-tax-office, departure-tax-office"
    )
    assert undefined_slot(processes, "naturalisation", "opener") == (
        "slot opener belongs to no known case type (naturalisation given)"
    )


# --- the definitions ---------------------------------------------------------------------


def _definition(processes: Processes, **changes: Any) -> dict[str, Any]:
    return processes["relocation"].model_dump() | changes


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rejection_slots": ["arrival-office"]}, "undefined slots: arrival-office"),
        (
            {"milestones": [{"name": "x", "event_type": ARRIVED, "slot": "nobody"}]},
            "undefined slots: nobody",
        ),
        (
            {
                "parties": [{"name": "opener", "role": "municipality", "opener": True}],
                "milestones": [],
                "rejection_slots": [],
            },
            "the opener slot has the opening",
        ),
        (
            {"parties": [{"name": "a", "role": "portal", "opener": True, "canton": "arrival.canton"}]},
            "exactly one of opener, municipality, canton",
        ),
        (
            {"parties": [{"name": "opener", "role": "portal", "opener": True}] * 2},
            "names a slot twice",
        ),
        (
            {
                "parties": [
                    {"name": "opener", "role": "portal", "opener": True},
                    {
                        "name": "tax",
                        "role": "tax-office",
                        "canton": "arrival.canton",
                        "unless_same_as": "opener",
                    },
                ],
                "milestones": [],
                "rejection_slots": [],
            },
            "unless_same_as cannot name the opener slot",
        ),
    ],
)
def test_a_definition_naming_slots_it_does_not_define_is_refused(
    processes: Processes, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ProcessDefinition.model_validate(_definition(processes, **change))


def test_every_milestone_and_rejection_names_a_slot_of_its_case_type(processes: Processes) -> None:
    for process in processes.by_case_type.values():
        slots = {slot.name for slot in process.parties}
        assert {m.slot for m in process.milestones} <= slots
        assert set(process.rejection_slots) <= slots
        assert [slot.name for slot in process.parties if slot.opener] == ["opener"]
