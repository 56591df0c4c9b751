"""Rules that keep one oversized or unpublishable record from stopping the hub; no I/O.

What a dead letter keeps of a record, which publishing failures are the record's own, the
limits that have to fit together, and the order in which the relay sends a pass (against
the in-memory publisher, the fake of the Kafka adapter).
"""

from __future__ import annotations

import hashlib

import pytest
from aiokafka import errors as kafka_errors
from pydantic import ValidationError

from hub.errors import BrokerUnavailable, MessageTooLarge
from hub.runtime.deadletter import dead_letter_headers
from hub.runtime.deadletter_reference import HEADER_VALUE_BYTES, MAX_HEADERS, PREVIEW_BYTES, keep, record_size
from hub.runtime.outbox_waves import publish_in_case_order
from hub.runtime.publisher import InMemoryPublisher, OutgoingRecord
from hub.runtime.send_results import failed, illegal_topic
from hub.runtime.settings import HubSettings
from hub.runtime.topics import ingress_topic, topic_config
from tests.fixtures.records import consumer_record

CAP = 64 * 1024


def test_a_record_within_the_cap_is_kept_whole() -> None:
    record = consumer_record(b'{"a": 1}', [("ce_id", b"e-1"), ("x-note", b"n" * 600)])
    kept = keep(record, CAP)
    assert not kept.truncated
    assert (kept.value, kept.key) == (b'{"a": 1}', b"case-1")
    assert ("x-note", "n" * 600) in kept.headers  # whole records keep their headers as they came
    assert kept.reference_headers() == []


def test_a_record_over_the_cap_is_kept_as_a_reference_to_its_whole_value() -> None:
    value = b"v" * (2 * CAP)
    kept = keep(consumer_record(value, [("ce_id", b"e-1")]), CAP)
    assert kept.truncated
    assert kept.value == value[:PREVIEW_BYTES]
    assert kept.original_size == len(value)
    assert kept.original_sha256 == hashlib.sha256(value).hexdigest()
    assert dict(kept.reference_headers()) == {
        "dlt-value-truncated": "true",
        "dlt-headers-truncated": "false",
        "dlt-original-size": str(len(value)),
        "dlt-original-sha256": hashlib.sha256(value).hexdigest(),
        "dlt-original-record-size": str(record_size(consumer_record(value, [("ce_id", b"e-1")]))),
    }


def test_a_reference_cuts_every_header_short_and_keeps_at_most_a_bounded_number() -> None:
    headers = [("ce_id", b"e-1"), ("x-" + "k" * 300, b"\xff" * 10), ("x-huge", b"h" * (2 * CAP))]
    headers += [(f"x-{n}", b"1") for n in range(MAX_HEADERS)]
    kept = keep(consumer_record(b"{}", headers, key=b"k" * 4096), CAP)
    assert kept.truncated
    assert kept.headers_truncated
    assert len(kept.headers) == MAX_HEADERS
    assert ("ce_id", "e-1") in kept.headers
    assert dict(kept.headers)["x-huge"] == "h" * HEADER_VALUE_BYTES
    assert all(len(name.encode()) <= 128 for name, _ in kept.headers)
    assert kept.key is not None
    assert len(kept.key) == 512
    assert kept.value == b"{}"  # a small value of an oversized record is kept as it is
    assert dict(kept.reference_headers())["dlt-value-truncated"] == "false"


def test_the_size_of_a_record_counts_its_key_value_and_headers() -> None:
    assert record_size(consumer_record(b"12345", [("ab", b"cde")], key=b"k1")) == 2 + 5 + 5


def test_a_dead_letter_of_a_reference_says_so_beside_its_dlt_headers() -> None:
    record = consumer_record(b"v" * (2 * CAP), [("ce_id", b"e-1")])
    headers = dict(dead_letter_headers(record, "g", MessageTooLarge("too big"), 1, keep(record, CAP)))
    assert headers["dlt-value-truncated"] == "true"
    assert headers["dlt-exception-fqcn"] == "hub.errors.MessageTooLarge"
    assert headers["ce_id"] == "e-1"


def test_a_record_too_large_for_the_client_fails_alone_and_for_good() -> None:
    client_side = failed(kafka_errors.MessageSizeTooLargeError("2 MB"), at_broker=False)
    assert client_side.permanent
    assert not client_side.batch_refused
    broker_side = failed(kafka_errors.MessageSizeTooLargeError(), at_broker=True)
    assert broker_side.permanent
    assert broker_side.batch_refused  # another record of the batch may have caused it


@pytest.mark.parametrize(
    "error",
    [
        kafka_errors.NotLeaderForPartitionError(),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.RequestTimedOutError(),
        kafka_errors.KafkaConnectionError(),
        kafka_errors.UnknownTopicOrPartitionError(),
    ],
)
def test_a_broker_that_is_away_or_moving_is_a_failure_for_now(error: Exception) -> None:
    result = failed(error, at_broker=True)
    assert result.error is not None
    assert not result.permanent


def test_a_topic_name_kafka_would_never_accept_fails_for_good() -> None:
    assert illegal_topic("hub.delivery.ch.mun.1061.einwohnerdienste") is None
    for name in ("with space", "", "..", "x" * 250, "ümlaut"):
        result = illegal_topic(name)
        assert result is not None
        assert result.permanent


def test_partner_ingress_topics_carry_the_size_limit_and_internal_topics_do_not() -> None:
    ingress = topic_config(ingress_topic("CH/MUN/1061/x"), retention_hours=1, max_message_bytes=266_240)
    assert ingress["max.message.bytes"] == "266240"
    assert topic_config("hub.ingress", retention_hours=1, max_message_bytes=9)["max.message.bytes"] == "9"
    for internal in ("hub.identity.requests", "hub.ingress-dlt", "hub.delivery.ch.mun.1061.x"):
        assert "max.message.bytes" not in topic_config(internal, retention_hours=1, max_message_bytes=9)


def test_limits_that_the_producer_could_not_publish_are_refused() -> None:
    assert HubSettings().kafka_max_request_bytes == 1024 * 1024
    with pytest.raises(ValidationError, match="HUB_DEAD_LETTER_MAX_STORED_BYTES"):
        HubSettings(dead_letter_max_stored_bytes=1024 * 1024)
    with pytest.raises(ValidationError, match="HUB_MAX_MESSAGE_BYTES"):
        HubSettings(max_message_bytes=2 * 1024 * 1024)
    raised = HubSettings(max_message_bytes=2 * 1024 * 1024, kafka_max_request_bytes=3 * 1024 * 1024)
    assert raised.max_message_bytes == 2 * 1024 * 1024


def _records(*rows: tuple[str, str, int]) -> list[OutgoingRecord]:
    """(topic, key, value size) per row, each with its position as its ce_id."""
    return [
        OutgoingRecord(topic, key.encode(), b"v" * size, (("ce_id", str(n).encode()),))
        for n, (topic, key, size) in enumerate(rows)
    ]


def _sent(publisher: InMemoryPublisher) -> list[int]:
    return [int(dict(r.headers)["ce_id"]) for r in publisher.sent]


@pytest.mark.asyncio
async def test_a_pass_sends_each_chain_in_order_one_row_at_a_time() -> None:
    publisher = InMemoryPublisher()
    await publisher.start()
    records = _records(("t", "a", 1), ("t", "a", 1), ("t", "b", 1), ("u", "a", 1), ("t", "a", 1))
    outcome = await publish_in_case_order(publisher, [(r.topic, r.key) for r in records], records.__getitem__)
    assert all(r is not None and r.acknowledged for r in outcome.results)
    # Waves: the first row of every chain, then the next of each, and so on.
    assert _sent(publisher) == [0, 2, 3, 1, 4]
    assert publisher.calls == 3


@pytest.mark.asyncio
async def test_a_failed_row_stops_its_chain_and_no_other() -> None:
    publisher = InMemoryPublisher(max_request_bytes=100)
    await publisher.start()
    records = _records(("t", "a", 1), ("t", "a", 500), ("t", "a", 1), ("t", "b", 1), ("t", "b", 1))
    outcome = await publish_in_case_order(publisher, [(r.topic, r.key) for r in records], records.__getitem__)
    assert _sent(publisher) == [0, 3, 4]
    assert outcome.results[1] is not None
    assert outcome.results[1].permanent
    assert outcome.results[2] is None  # not sent: it waits behind the failed row of its case


@pytest.mark.asyncio
async def test_a_batch_refused_whole_is_sent_again_record_by_record() -> None:
    publisher = InMemoryPublisher(max_message_bytes=100)
    await publisher.start()
    records = _records(("t", "a", 1), ("t", "b", 500), ("t", "c", 1))
    outcome = await publish_in_case_order(publisher, [(r.topic, r.key) for r in records], records.__getitem__)
    assert _sent(publisher) == [0, 2]
    assert [r is not None and r.acknowledged for r in outcome.results] == [True, False, True]
    refused = outcome.results[1]
    assert refused is not None
    assert refused.permanent
    assert not refused.batch_refused  # refused on its own: the culprit


@pytest.mark.asyncio
async def test_an_outage_in_the_middle_of_a_pass_keeps_what_was_acknowledged() -> None:
    publisher = InMemoryPublisher()
    await publisher.start()
    records = _records(("t", "a", 1), ("t", "a", 1))

    def record_for(index: int) -> OutgoingRecord:
        if index == 1:
            publisher.unavailable = True  # the broker goes away before the second wave
        return records[index]

    outcome = await publish_in_case_order(publisher, [(r.topic, r.key) for r in records], record_for)
    assert isinstance(outcome.outage, BrokerUnavailable)
    assert outcome.results[0] is not None
    assert outcome.results[0].acknowledged
    assert outcome.results[1] is None
