"""Properties every catalogued contract shares."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from contracts import (
    CATALOG,
    CaseCompleted,
    CaseRejected,
    Contract,
    NotificationRequested,
    PseudonymsRequested,
    SetSubscription,
    parse_data,
    serialize_data,
)
from contracts.base import EVENT_TYPE_PATTERN

EVENT_TYPES = sorted(CATALOG)


def test_samples_cover_the_whole_catalogue(samples: dict[str, Contract]) -> None:
    assert sorted(samples) == EVENT_TYPES


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_contract_is_frozen(event_type: str, samples: dict[str, Contract]) -> None:
    contract = samples[event_type]
    field = next(iter(type(contract).model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(contract, field, getattr(contract, field))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_contract_rejects_an_extra_field(event_type: str, samples: dict[str, Contract]) -> None:
    contract = samples[event_type]
    data = contract.model_dump() | {"unexpected": 1}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        type(contract).model_validate(data)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_contract_survives_a_serialisation_round_trip(event_type: str, samples: dict[str, Contract]) -> None:
    contract = samples[event_type]
    assert parse_data(event_type, serialize_data(contract)) == contract


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_event_type_is_versioned_and_names_its_schema(event_type: str) -> None:
    contract = CATALOG[event_type]
    assert re.fullmatch(EVENT_TYPE_PATTERN, event_type)
    assert contract.event_type == event_type
    assert contract.dataschema() == f"https://hub.stadtluzern.ch/schemas/{event_type}.json"


def test_refuses_to_define_a_contract_with_an_unversioned_event_type() -> None:
    with pytest.raises(TypeError, match="versioned"):

        class Unversioned(Contract):
            event_type = "ch.lu.hub.test.unversioned"


def test_serialised_data_is_compact_json(samples: dict[str, Contract]) -> None:
    assert b": " not in serialize_data(samples[CaseRejected.event_type])


def test_rejects_case_completed_with_a_naive_timestamp() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        CaseCompleted.model_validate({"completed_at": "2025-03-05T12:00:00", "milestones": []})


def test_rejects_case_rejected_by_something_that_is_not_a_participant_id() -> None:
    with pytest.raises(ValidationError):
        CaseRejected(rejected_by="the tax office", reason="duplicate")


def test_pseudonyms_requested_needs_a_recipient_or_the_citizen_pseudonym(
    samples: dict[str, Contract],
) -> None:
    requested = samples[PseudonymsRequested.event_type]
    with pytest.raises(ValidationError, match="needs recipients or the citizen pseudonym"):
        PseudonymsRequested.model_validate(requested.model_dump() | {"recipients": ()})
    only_citizen = PseudonymsRequested.model_validate(
        requested.model_dump() | {"recipients": (), "citizen_pseudonym": True}
    )
    assert only_citizen.recipients == ()


@pytest.mark.parametrize(
    ("channel", "recipient"),
    [("email", "+41791234567"), ("sms", "anna@example.ch")],
)
def test_notification_recipient_must_fit_the_channel(channel: str, recipient: str) -> None:
    with pytest.raises(ValidationError, match="recipient is not") as caught:
        NotificationRequested.model_validate(
            {
                "notification_id": "n-1",
                "channel": channel,
                "recipient": recipient,
                "language": "de",
                "template": "relocation.received",
                "placeholders": {},
            }
        )
    assert recipient not in str(caught.value.errors(include_input=False))


def test_a_subscription_may_name_the_slot_it_serves(samples: dict[str, Contract]) -> None:
    subscription = samples[SetSubscription.event_type].model_dump()
    assert subscription["slot"] is None  # serves whichever slot the partner fills
    departure = SetSubscription.model_validate(subscription | {"slot": "departure-tax-office"})
    assert (departure.slot, departure.scope, departure.case_type) == (
        "departure-tax-office",
        "party",
        "relocation",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slot": "arrival-tax-office", "scope": "all-cases"}, "an all-cases subscription spans every case"),
        ({"slot": "arrival-tax-office", "case_type": None}, "needs the case type that defines it"),
        ({"slot": "Arrival Tax Office"}, "should match pattern"),
    ],
)
def test_a_slot_outside_a_party_scope_of_one_case_type_is_refused(
    samples: dict[str, Contract], change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        SetSubscription.model_validate(samples[SetSubscription.event_type].model_dump() | change)
