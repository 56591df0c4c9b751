"""Canonical form, Ed25519 signatures and the key and time rules (hub.signing)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import pytest

from contracts import LUCERNE, Action, ArrivalRegistered, Envelope, EnvelopeError
from hub.signing import (
    CANONICAL_PREFIX,
    BadSignature,
    ForeignSigningKey,
    FutureEvent,
    KeyOutsideValidity,
    MisroutedRecord,
    PublicKey,
    RevokedSigningKey,
    SigningKey,
    StaleEvent,
    UnsignedEvent,
    canonical_form,
    check_freshness,
    check_key_usable,
    check_record_key,
    decode_public_key,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
VALUE = b'{"municipality":{"bfs_number":1061,"name":"Luzern"},"registered_on":"2026-03-01"}'


@pytest.fixture
def envelope() -> Envelope:
    return Envelope.new(
        ArrivalRegistered(municipality=LUCERNE, registered_on=dt.date(2026, 3, 1)),
        source="urn:ch:lu:hub:partner:CH/MUN/1061/einwohnerdienste",
        business_process_id="eumzug-1",
        subject="resident-registration:abc",
        reference_id="delivery-1",
        event_id="event-1",
        time=dt.datetime(2026, 3, 1, 11, 59, 30, 123456, tzinfo=dt.UTC),
    )


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate("lucerne-2026a")


def test_canonical_form_lists_every_attribute_sorted_and_length_prefixed(envelope: Envelope) -> None:
    form = canonical_form(envelope, VALUE, key_id="lucerne-2026a")
    lines = form.removeprefix(CANONICAL_PREFIX).decode().splitlines()
    names = [line.split(":", 1)[0] for line in lines]
    assert form.startswith(CANONICAL_PREFIX)
    assert names[:-1] == sorted(names[:-1])
    assert set(names[:-1]) == {
        "action",
        "businessprocessid",
        "datacontenttype",
        "dataschema",
        "id",
        "referenceid",
        "sigkeyid",
        "source",
        "specversion",
        "subject",
        "testdelivery",
        "time",
        "type",
    }
    assert "time:27:2026-03-01T11:59:30.123456Z" in lines
    assert "testdelivery:5:false" in lines
    assert "sigkeyid:13:lucerne-2026a" in lines
    assert lines[-1] == f"data-sha256:{hashlib.sha256(VALUE).hexdigest()}"


def test_canonical_form_is_deterministic_and_ignores_the_signature_itself(
    envelope: Envelope, key: SigningKey
) -> None:
    signed = key.sign(envelope, VALUE)
    assert canonical_form(signed, VALUE, key_id=key.key_id) == canonical_form(
        envelope, VALUE, key_id=key.key_id
    )
    assert key.sign(envelope, VALUE).signature == signed.signature  # Ed25519 is deterministic


def test_absent_attributes_are_left_out_not_written_empty(envelope: Envelope) -> None:
    bare = envelope.model_copy(update={"subject": None, "referenceid": None})
    form = canonical_form(bare, VALUE, key_id="k").decode()
    assert "\nsubject:" not in form
    assert "\nreferenceid:" not in form


def test_a_value_cannot_fake_another_attribute() -> None:
    """An id that smuggles in a ``referenceid`` line vs. a real ``referenceid``: joined naively
    the two would read the same; the length prefixes keep them apart."""
    data = ArrivalRegistered(municipality=LUCERNE, registered_on=dt.date(2026, 3, 1))
    common: dict[str, Any] = {"source": "urn:x", "business_process_id": "case-1", "time": NOW}
    honest = Envelope.new(data, event_id="e", reference_id="r", **common)
    sneaky = Envelope.new(data, event_id="e\nreferenceid:r", **common)

    def naive(envelope: Envelope) -> str:
        attributes = envelope.model_dump(exclude_none=True, exclude={"signature"})
        return "\n".join(f"{name}:{attributes[name]}" for name in sorted(attributes))

    assert naive(honest) == naive(sneaky)
    assert canonical_form(honest, VALUE, key_id="k") != canonical_form(sneaky, VALUE, key_id="k")


def test_a_signed_envelope_survives_the_kafka_headers(envelope: Envelope, key: SigningKey) -> None:
    signed = key.sign(envelope, VALUE)
    headers = dict(signed.to_headers())
    assert headers["ce_sigkeyid"] == b"lucerne-2026a"
    assert len(base64.b64decode(headers["ce_signature"])) == 64
    key.public.verify(Envelope.from_headers(signed.to_headers()), VALUE)


def test_an_unsigned_envelope_has_no_signature_headers(envelope: Envelope) -> None:
    """Backwards compatible: producers that do not sign send the same headers as before."""
    names = {name for name, _ in envelope.to_headers()}
    assert not names & {"ce_sigkeyid", "ce_signature"}
    assert Envelope.from_headers(envelope.to_headers()).signature is None


def test_a_malformed_signature_header_is_an_envelope_error(envelope: Envelope) -> None:
    headers = [*envelope.to_headers(), ("ce_signature", b"not base64!")]
    with pytest.raises(EnvelopeError, match="invalid header ce_signature"):
        Envelope.from_headers(headers)


TAMPERED_ATTRIBUTES: dict[str, Any] = {
    "id": "event-2",
    "source": "urn:ch:lu:hub:partner:CH/MUN/1059/einwohnerdienste",
    "type": "ch.lu.hub.relocation.departure-confirmed.v1",
    "time": dt.datetime(2026, 3, 1, 11, 59, 31, tzinfo=dt.UTC),
    "subject": "resident-registration:xyz",
    "dataschema": "urn:other",
    "datacontenttype": "application/json; charset=utf-8",
    "businessprocessid": "eumzug-2",
    "referenceid": "delivery-2",
    "action": Action.CORRECTION,
    "testdelivery": True,
}


@pytest.mark.parametrize("attribute", sorted(TAMPERED_ATTRIBUTES))
def test_changing_any_attribute_after_signing_breaks_the_signature(
    envelope: Envelope, key: SigningKey, attribute: str
) -> None:
    signed = key.sign(envelope, VALUE)
    tampered = signed.model_copy(update={attribute: TAMPERED_ATTRIBUTES[attribute]})
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        key.public.verify(tampered, VALUE)


def test_changing_one_byte_of_the_value_breaks_the_signature(envelope: Envelope, key: SigningKey) -> None:
    signed = key.sign(envelope, VALUE)
    with pytest.raises(BadSignature):
        key.public.verify(signed, VALUE.replace(b"1061", b"1062"))


def test_a_signature_by_another_key_under_the_same_id_is_a_forgery(
    envelope: Envelope, key: SigningKey
) -> None:
    forger = SigningKey.generate(key.key_id)  # the attacker claims the victim's key id
    forged = forger.sign(envelope, VALUE)
    forger.public.verify(forged, VALUE)  # valid for the forger's own key ...
    with pytest.raises(BadSignature):
        key.public.verify(forged, VALUE)  # ... but not for the registered one


def test_swapping_the_key_id_header_breaks_the_signature(envelope: Envelope, key: SigningKey) -> None:
    signed = key.sign(envelope, VALUE)
    relabelled = signed.model_copy(update={"sigkeyid": "lucerne-2026b"})
    with pytest.raises(BadSignature):
        PublicKey("lucerne-2026b", key.public.key).verify(relabelled, VALUE)


def test_an_unsigned_or_half_signed_event_is_unsigned(envelope: Envelope, key: SigningKey) -> None:
    signed = key.sign(envelope, VALUE)
    with pytest.raises(UnsignedEvent):
        key.public.verify(envelope, VALUE)
    with pytest.raises(UnsignedEvent):
        key.public.verify(signed.model_copy(update={"signature": None}), VALUE)
    with pytest.raises(UnsignedEvent):
        key.public.verify(signed.model_copy(update={"sigkeyid": None}), VALUE)


def test_public_keys_travel_as_base64_of_32_bytes(key: SigningKey) -> None:
    text = key.public.base64
    assert len(base64.b64decode(text)) == 32
    assert PublicKey.from_base64("k", text).base64 == text
    with pytest.raises(ValueError, match="32 bytes"):
        decode_public_key(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="not base64"):
        decode_public_key("***")


def test_a_private_key_never_shows_in_repr(key: SigningKey) -> None:
    assert repr(key) == "SigningKey(key_id='lucerne-2026a')"


def _usable(**changes: Any) -> None:
    rule: dict[str, Any] = {
        "key_id": "k",
        "owner": "CH/MUN/1061/einwohnerdienste",
        "sender": "CH/MUN/1061/einwohnerdienste",
        "valid_from": NOW - dt.timedelta(days=1),
        "valid_until": NOW + dt.timedelta(days=1),
        "revoked_at": None,
        "now": NOW,
    }
    check_key_usable(**(rule | changes))


def test_a_key_inside_its_window_of_its_own_partner_is_usable() -> None:
    _usable()
    _usable(valid_until=None)
    _usable(valid_from=NOW)  # the window includes its start ...


@pytest.mark.parametrize(
    ("changes", "error", "reason"),
    [
        ({"sender": "CH/MUN/1059/einwohnerdienste"}, ForeignSigningKey, "belongs to CH/MUN/1061"),
        ({"revoked_at": NOW - dt.timedelta(seconds=1)}, RevokedSigningKey, "was revoked at"),
        ({"valid_until": NOW}, KeyOutsideValidity, "expired at"),  # ... and excludes its end
        ({"valid_from": NOW + dt.timedelta(seconds=1)}, KeyOutsideValidity, "is not valid before"),
    ],
    ids=["another-partners-key", "revoked", "expired", "not-yet-valid"],
)
def test_refused_keys(changes: dict[str, Any], error: type[Exception], reason: str) -> None:
    with pytest.raises(error, match=reason):
        _usable(**changes)


def test_the_time_window_accepts_its_edges_and_refuses_beyond() -> None:
    check_freshness(NOW - dt.timedelta(seconds=600), NOW, max_age_s=600, max_future_skew_s=30)
    check_freshness(NOW + dt.timedelta(seconds=30), NOW, max_age_s=600, max_future_skew_s=30)
    with pytest.raises(StaleEvent, match="601s old; at most 600s"):
        check_freshness(NOW - dt.timedelta(seconds=601), NOW, max_age_s=600, max_future_skew_s=30)
    with pytest.raises(FutureEvent, match="31s in the future"):
        check_freshness(NOW + dt.timedelta(seconds=31), NOW, max_age_s=600, max_future_skew_s=30)


def test_a_record_keyed_by_its_signed_case_id_passes(envelope: Envelope) -> None:
    check_record_key(envelope, b"eumzug-1")


@pytest.mark.parametrize("kafka_key", [b"eumzug-2", b"", None, b"EUMZUG-1"])
def test_a_record_keyed_otherwise_is_misrouted(envelope: Envelope, kafka_key: bytes | None) -> None:
    """The key is not signed; it must equal the case id that is, or the case's order breaks."""
    with pytest.raises(MisroutedRecord, match="not by its case 'eumzug-1'"):
        check_record_key(envelope, kafka_key)
