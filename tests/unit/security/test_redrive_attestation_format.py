from __future__ import annotations

import datetime as dt

import pytest

from contracts import LUCERNE, ArrivalRegistered, Envelope
from hub.security.redrive_attestation import HEADER, attest, attested_redrive
from hub.security.signing import BadSignature, PublicKey, SigningKey, UnknownSigningKey

AT = dt.datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=dt.UTC)
OPERATOR = SigningKey.generate("operator-0123456789abcdef")


def _trusted() -> dict[str, PublicKey]:
    return {OPERATOR.key_id: OPERATOR.public}


@pytest.fixture
def envelope() -> Envelope:
    return Envelope.new(
        ArrivalRegistered(municipality=LUCERNE, registered_on=dt.date(2026, 3, 1)),
        source="urn:ch:lu:hub:partner:CH/MUN/1061/einwohnerdienste",
        business_process_id="eumzug-1",
        event_id="event-1",
    )


def _headers(value: str) -> list[tuple[str, bytes]]:
    return [("ce_id", b"event-1"), (HEADER, value.encode())]


def test_an_attestation_names_its_key_and_time_and_verifies(envelope: Envelope) -> None:
    value = attest(OPERATOR, event_id="event-1", source=envelope.source, redriven_at=AT)
    key_id, when, _ = value.split(" ")
    assert (key_id, when) == (OPERATOR.key_id, "2026-11-26T12:00:00.123456Z")
    assert attested_redrive(_headers(value), envelope, _trusted) == AT


def test_without_the_header_there_is_no_redrive_and_the_trusted_set_is_not_read(envelope: Envelope) -> None:
    def unreadable() -> dict[str, PublicKey]:
        raise AssertionError("read for a record without an attestation")

    assert attested_redrive([("ce_id", b"event-1")], envelope, unreadable) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "one-part",
        "a b",
        "a b c d",
        f"{OPERATOR.key_id} yesterday c2ln",
        f"{OPERATOR.key_id} {AT.isoformat()} !!",
    ],
)
def test_a_malformed_attestation_is_refused(envelope: Envelope, value: str) -> None:
    with pytest.raises(BadSignature, match="malformed"):
        attested_redrive(_headers(value), envelope, _trusted)


def test_an_attestation_without_a_time_zone_is_refused(envelope: Envelope) -> None:
    good = attest(OPERATOR, event_id="event-1", source=envelope.source, redriven_at=AT)
    key_id, _, signature = good.split(" ")
    with pytest.raises(BadSignature, match="no time zone"):
        attested_redrive(_headers(f"{key_id} 2026-11-26T12:00:00 {signature}"), envelope, _trusted)


def test_two_attestations_are_refused(envelope: Envelope) -> None:
    value = attest(OPERATOR, event_id="event-1", source=envelope.source, redriven_at=AT)
    with pytest.raises(BadSignature, match="2 redrive attestations"):
        attested_redrive([*_headers(value), (HEADER, value.encode())], envelope, _trusted)


def test_an_untrusted_key_is_refused(envelope: Envelope) -> None:
    stranger = SigningKey.generate("operator-fedcba9876543210")
    value = attest(stranger, event_id="event-1", source=envelope.source, redriven_at=AT)
    with pytest.raises(UnknownSigningKey, match="not a trusted operator key"):
        attested_redrive(_headers(value), envelope, _trusted)


@pytest.mark.parametrize(
    ("event_id", "source", "at"),
    [
        ("event-2", None, AT),  # made for another event
        ("event-1", "urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste", AT),  # another sender's
        ("event-1", None, AT + dt.timedelta(microseconds=1)),  # signed for another time
    ],
)
def test_an_attestation_for_anything_else_does_not_verify(
    envelope: Envelope, event_id: str, source: str | None, at: dt.datetime
) -> None:
    value = attest(OPERATOR, event_id=event_id, source=source or envelope.source, redriven_at=at)
    key_id, _, signature = value.split(" ")
    shown = f"{key_id} {AT.isoformat().replace('+00:00', 'Z')} {signature}"
    with pytest.raises(BadSignature, match="made for another event"):
        attested_redrive(_headers(shown), envelope, _trusted)
