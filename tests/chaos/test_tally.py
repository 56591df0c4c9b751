"""The chaos verdict counts what it should: a copy is not a duplicate, a second effect is.

Runs on made-up observations, so each rule of ``hub.local.chaos.verify.tally`` is seen to bite.
"""

from __future__ import annotations

import random

import pytest

from hub.local.chaos.scenario import (
    AGENCIES,
    CITIZEN_TEMPLATES,
    DELIVERED_TYPES,
    NOTICE_CHANNELS,
    Stream,
    build_stream,
)
from hub.local.chaos.verify import DeadLetter, Observed, tally


@pytest.fixture
def stream() -> Stream:
    return build_stream(random.Random(1), cases=3, poisons=2)


def _flawless(stream: Stream) -> Observed:
    """What a run without any loss or duplicate would have observed."""
    seen = Observed()
    for case in stream.cases:
        seen.case_status[case.case_id] = "completed"
        for partner in AGENCIES:
            for event_type in DELIVERED_TYPES:
                event_id = f"{case.case_id}/{partner}/{event_type}"
                seen.db_deliveries[(case.case_id, partner, event_type)].add(event_id)
                seen.kafka_deliveries[(case.case_id, partner, event_type)].add(event_id)
        for template in CITIZEN_TEMPLATES:
            for channel in NOTICE_CHANNELS:
                notification_id = f"{case.case_id}:{template}:{channel}"
                key = (case.case_id, template, channel)
                seen.notices[key].append((notification_id, "delivered"))
                if channel == "email":
                    seen.message_ids[key] = f"<{notification_id}@hub>"
                    seen.emails[f"<{notification_id}@hub>"] = 1
                else:
                    seen.inbox.add(notification_id)
    for offset, poison in enumerate(stream.poisons):
        letter = DeadLetter(("hub.ingress", 0, offset), poison.draft.event_id, "ContractViolation")
        seen.kafka_dead_letters["hub.ingress-dlt"].append(letter)
        seen.db_dead_letters[("hub.registry.ingress", "hub.ingress", 0, offset)] = 1
    seen.backlog = {"registry": 0}
    return seen


def test_a_flawless_run_counts_nothing_lost_or_duplicated(stream: Stream) -> None:
    result = tally(stream, _flawless(stream))
    assert (result.lost, result.duplicated, result.dead_lettered) == (0, 0, 2)
    assert result.findings == []


def test_a_second_event_id_for_the_same_delivery_is_a_duplicate(stream: Stream) -> None:
    seen = _flawless(stream)
    key = (stream.cases[0].case_id, AGENCIES[0], DELIVERED_TYPES[0])
    seen.kafka_deliveries[key].add("another-id")
    assert tally(stream, seen).duplicated == 1


def test_a_delivery_missing_from_the_topic_or_the_outbox_is_lost(stream: Stream) -> None:
    seen = _flawless(stream)
    seen.kafka_deliveries.pop((stream.cases[0].case_id, AGENCIES[1], DELIVERED_TYPES[1]))
    seen.db_deliveries.pop((stream.cases[1].case_id, AGENCIES[2], DELIVERED_TYPES[0]))
    assert tally(stream, seen).lost == 2


def test_an_open_case_and_a_notice_stuck_in_sending_are_lost(stream: Stream) -> None:
    seen = _flawless(stream)
    seen.case_status[stream.cases[0].case_id] = "in-progress"
    key = (stream.cases[1].case_id, CITIZEN_TEMPLATES[2], "email")
    seen.notices[key] = [(seen.notices[key][0][0], "sending")]
    result = tally(stream, seen)
    assert result.lost == 2
    assert any("notice not delivered" in finding for finding in result.findings)


def test_an_email_sent_again_is_counted_as_resent_and_one_never_received_is_lost(stream: Stream) -> None:
    seen = _flawless(stream)
    twice, never = sorted(seen.message_ids.values())[:2]
    seen.emails[twice] = 2
    seen.emails.pop(never)
    result = tally(stream, seen)
    assert (result.lost, result.duplicated, result.resent) == (1, 0, 1)


def test_an_email_under_another_message_id_is_a_duplicate(stream: Stream) -> None:
    seen = _flawless(stream)
    seen.emails["<someone-else@hub>"] = 1
    result = tally(stream, seen)
    assert result.duplicated == 1
    assert any("unexpected email" in finding for finding in result.findings)


def test_a_missing_inbox_copy_is_lost(stream: Stream) -> None:
    seen = _flawless(stream)
    seen.inbox.pop()
    assert tally(stream, seen).lost == 1


def test_a_record_dead_lettered_twice_is_one_dead_letter_and_one_duplicate(stream: Stream) -> None:
    seen = _flawless(stream)
    # The relay published the dead letter twice (a copy), and the record was dead-lettered
    # twice (two rows): the topic still holds one original, the database shows the duplicate.
    letters = seen.kafka_dead_letters["hub.ingress-dlt"]
    letters.append(letters[0])
    seen.db_dead_letters[("hub.registry.ingress", "hub.ingress", 0, 0)] = 2
    result = tally(stream, seen)
    assert (result.dead_lettered, result.duplicated) == (2, 1)


def test_a_dead_letter_that_is_no_poison_is_counted_and_named(stream: Stream) -> None:
    seen = _flawless(stream)
    seen.kafka_dead_letters["hub.identity.requests-dlt"].append(
        DeadLetter(("hub.identity.requests", 1, 7), "not-a-poison", "boom")
    )
    result = tally(stream, seen)
    assert result.dead_lettered == 3
    assert any("unexpected dead letter" in finding for finding in result.findings)


def test_a_poison_record_not_dead_lettered_is_named(stream: Stream) -> None:
    seen = _flawless(stream)
    seen.kafka_dead_letters["hub.ingress-dlt"].pop()
    result = tally(stream, seen)
    assert result.dead_lettered == 1
    assert any("poison not dead-lettered" in finding for finding in result.findings)
