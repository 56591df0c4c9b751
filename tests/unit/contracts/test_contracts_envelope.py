from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from contracts import (
    KRIENS,
    Action,
    DepartureConfirmed,
    Envelope,
    EnvelopeError,
    header_value,
)

SOURCE = "urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste"
Headers = list[tuple[str, bytes]]


@pytest.fixture
def envelope() -> Envelope:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on=date(2025, 2, 10))
    return Envelope.new(
        data,
        source=SOURCE,
        business_process_id="relocation-42",
        subject="case-42",
        time=datetime(2025, 2, 10, 9, 30, 15, 123456, tzinfo=UTC),
    )


def replaced(headers: Headers, name: str, value: bytes | None) -> Headers:
    kept = [(key, raw) for key, raw in headers if key != name]
    return kept if value is None else [*kept, (name, value)]


def test_new_takes_type_and_dataschema_from_the_data_class(envelope: Envelope) -> None:
    assert envelope.type == "ch.lu.hub.relocation.departure-confirmed.v1"
    assert envelope.dataschema == DepartureConfirmed.dataschema()
    assert envelope.specversion == "1.0"
    assert envelope.action is Action.NEW
    assert envelope.testdelivery is False


def test_new_generates_distinct_ids_and_an_aware_time() -> None:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on=date(2025, 2, 10))
    first = Envelope.new(data, source=SOURCE, business_process_id="c")
    second = Envelope.new(data, source=SOURCE, business_process_id="c")
    assert first.id != second.id
    assert first.time.tzinfo is not None


def test_headers_round_trip(envelope: Envelope) -> None:
    assert Envelope.from_headers(envelope.to_headers()) == envelope


def test_headers_round_trip_with_every_optional_attribute(envelope: Envelope) -> None:
    answer = envelope.model_copy(
        update={
            "referenceid": "original-id",
            "action": Action.RESPONSE,
            "testdelivery": True,
        }
    )
    assert Envelope.from_headers(answer.to_headers()) == answer


def test_headers_use_kafka_binary_mode_names_and_text_values(
    envelope: Envelope,
) -> None:
    headers = dict(envelope.to_headers())
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_time"] == b"2025-02-10T09:30:15.123456Z"
    assert headers["ce_testdelivery"] == b"false"
    assert headers["ce_action"] == b"new"
    assert headers["content-type"] == b"application/json"
    assert "ce_datacontenttype" not in headers
    assert "ce_referenceid" not in headers


def test_time_with_an_offset_is_sent_in_utc(envelope: Envelope) -> None:
    zurich = timezone(timedelta(hours=1))
    local = envelope.model_copy(update={"time": datetime(2025, 2, 10, 10, 30, tzinfo=zurich)})
    assert dict(local.to_headers())["ce_time"] == b"2025-02-10T09:30:00Z"


def test_rejects_missing_ce_id(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "ce_id", None)
    with pytest.raises(EnvelopeError, match="missing header ce_id"):
        Envelope.from_headers(headers)


def test_rejects_missing_business_process_id(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "ce_businessprocessid", None)
    with pytest.raises(EnvelopeError, match="missing header ce_businessprocessid"):
        Envelope.from_headers(headers)


def test_rejects_missing_specversion(envelope: Envelope) -> None:
    """CloudEvents requires it on the wire; the model's default is for producers only."""
    headers = replaced(envelope.to_headers(), "ce_specversion", None)
    with pytest.raises(EnvelopeError, match="missing header ce_specversion"):
        Envelope.from_headers(headers)


def test_names_every_missing_header_at_once(envelope: Envelope) -> None:
    headers = replaced(replaced(envelope.to_headers(), "ce_specversion", None), "ce_type", None)
    with pytest.raises(EnvelopeError, match="missing header ce_specversion; missing header ce_type"):
        Envelope.from_headers(headers)


def test_rejects_unsupported_specversion(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "ce_specversion", b"0.3")
    with pytest.raises(EnvelopeError, match="invalid header ce_specversion"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("time", [b"2025-02-10T09:30:15", b"2025-02-10", b"1739179815"])
def test_rejects_time_without_an_offset(envelope: Envelope, time: bytes) -> None:
    headers = replaced(envelope.to_headers(), "ce_time", time)
    with pytest.raises(EnvelopeError, match="invalid header ce_time"):
        Envelope.from_headers(headers)


def test_accepts_nanosecond_times_from_other_platforms(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "ce_time", b"2025-02-10T10:30:15.123456789+01:00")
    assert Envelope.from_headers(headers).time == envelope.time


@pytest.mark.parametrize("content_type", [b"application/xml", b"text/plain", b""])
def test_rejects_content_type_other_than_json(envelope: Envelope, content_type: bytes) -> None:
    headers = replaced(envelope.to_headers(), "content-type", content_type)
    with pytest.raises(EnvelopeError, match="content-type"):
        Envelope.from_headers(headers)


def test_rejects_a_record_without_content_type(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "content-type", None)
    with pytest.raises(EnvelopeError, match="missing header content-type"):
        Envelope.from_headers(headers)


def test_accepts_json_content_type_with_parameters(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "content-type", b"application/json; charset=utf-8")
    assert Envelope.from_headers(headers).datacontenttype == "application/json; charset=utf-8"


def test_rejects_a_type_without_version(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "ce_type", b"ch.lu.hub.relocation.move-reported")
    with pytest.raises(EnvelopeError, match="invalid header ce_type"):
        Envelope.from_headers(headers)


def test_rejects_a_test_delivery_flag_that_is_not_true_or_false(
    envelope: Envelope,
) -> None:
    headers = replaced(envelope.to_headers(), "ce_testdelivery", b"yes")
    with pytest.raises(EnvelopeError, match="invalid header ce_testdelivery"):
        Envelope.from_headers(headers)


def test_rejects_a_repeated_attribute(envelope: Envelope) -> None:
    headers = [*envelope.to_headers(), ("ce_id", b"another")]
    with pytest.raises(EnvelopeError, match="duplicate header ce_id"):
        Envelope.from_headers(headers)


def test_rejects_a_header_that_is_not_utf8(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "ce_subject", b"\xff\xfe")
    with pytest.raises(EnvelopeError, match="ce_subject is not UTF-8"):
        Envelope.from_headers(headers)


def test_ignores_unknown_extensions_and_foreign_headers(envelope: Envelope) -> None:
    headers = [
        *envelope.to_headers(),
        ("ce_partnerextension", b"whatever"),
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ]
    assert Envelope.from_headers(headers) == envelope


def test_header_value_returns_the_last_value_or_none() -> None:
    headers = [("traceparent", b"first"), ("traceparent", b"second")]
    assert header_value(headers, "traceparent") == "second"
    assert header_value(headers, "tracestate") is None


def test_header_value_matches_content_type_case_insensitively() -> None:
    assert header_value([("Content-Type", b"application/json")], "content-type") == ("application/json")


def test_envelope_is_frozen_and_closed(envelope: Envelope) -> None:
    with pytest.raises(ValueError, match="frozen"):
        setattr(envelope, "id", "other")  # noqa: B010 - mutation is the point
    with pytest.raises(ValueError, match="Extra inputs"):
        Envelope.model_validate(envelope.model_dump() | {"partition": 1})


def test_rejects_naive_time_when_building_an_envelope() -> None:
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on=date(2025, 2, 10))
    with pytest.raises(ValueError, match="timezone"):
        Envelope.new(data, source=SOURCE, business_process_id="c", time=datetime(2025, 1, 1))


def test_rejects_a_time_that_is_not_a_calendar_date(envelope: Envelope) -> None:
    headers = replaced(envelope.to_headers(), "ce_time", b"2025-13-40T09:30:15Z")
    with pytest.raises(EnvelopeError, match="invalid header ce_time"):
        Envelope.from_headers(headers)
