"""The signed form, Ed25519 signatures and the key and time rules.

``hub.security.signing`` and ``hub.security.signed_form``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
from typing import Any

import pytest

from contracts import LUCERNE, ArrivalRegistered, Envelope, EnvelopeError
from hub.security.signing import (
    SIGNED_FORM_VERSION,
    AmbiguousHeaders,
    BadSignature,
    ForeignSigningKey,
    FutureEvent,
    Headers,
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
# As a partner's own client writes them: a JavaScript time, no ce_action, ce_testdelivery
# or ce_dataschema, and a header that is no CloudEvents attribute.
PARTNER_HEADERS: tuple[tuple[str, bytes], ...] = (
    ("ce_specversion", b"1.0"),
    ("ce_id", b"event-1"),
    ("ce_source", b"urn:ch:lu:hub:partner:CH/MUN/1061/einwohnerdienste"),
    ("ce_type", b"ch.lu.hub.relocation.arrival-registered.v1"),
    ("ce_time", b"2026-03-01T11:59:30.123Z"),
    ("ce_subject", b"resident-registration:abc"),
    ("ce_businessprocessid", b"eumzug-1"),
    ("ce_referenceid", b"delivery-1"),
    ("content-type", b"application/json"),
    ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
)


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


@pytest.fixture
def signed(key: SigningKey) -> list[tuple[str, bytes]]:
    return key.sign_headers(PARTNER_HEADERS, VALUE)


def _lines(headers: Headers, value: bytes = VALUE) -> list[str]:
    return canonical_form(headers, value).removeprefix(SIGNED_FORM_VERSION).decode().splitlines()


def _replaced(headers: Headers, name: str, value: bytes | None) -> list[tuple[str, bytes]]:
    """``headers`` with every ``name`` header left out, and then one with ``value`` if given."""
    kept = [(n, v) for n, v in headers if n != name]
    return kept if value is None else [*kept, (name, value)]


def test_the_form_lists_the_headers_present_by_name_with_their_bytes_as_received(
    signed: list[tuple[str, bytes]],
) -> None:
    form = canonical_form(signed, VALUE)
    assert form.startswith(b"ch.lu.hub.event-signature.v2\n")
    assert _lines(signed) == [
        "ce_businessprocessid:8:eumzug-1",
        "ce_id:7:event-1",
        "ce_referenceid:10:delivery-1",
        "ce_sigkeyid:13:lucerne-2026a",
        "ce_source:50:urn:ch:lu:hub:partner:CH/MUN/1061/einwohnerdienste",
        "ce_specversion:3:1.0",
        "ce_subject:25:resident-registration:abc",
        "ce_time:24:2026-03-01T11:59:30.123Z",  # not re-encoded as the hub would write it
        "ce_type:42:ch.lu.hub.relocation.arrival-registered.v1",
        "content-type:16:application/json",
        f"data-sha256:{hashlib.sha256(VALUE).hexdigest()}",
    ]


def test_absent_attributes_are_left_out_not_defaulted(signed: list[tuple[str, bytes]]) -> None:
    """The envelope defaults action and testdelivery for the hub to read; the form does not."""
    names = {line.split(":", 1)[0] for line in _lines(signed)}
    assert not names & {"ce_action", "ce_testdelivery", "ce_dataschema", "action", "testdelivery"}
    assert Envelope.from_headers(signed).action == "new"  # what the hub reads, unsigned default


def test_lengths_count_bytes_and_an_empty_value_hashes_zero_bytes() -> None:
    headers = [("ce_subject", "Zuzug aus Zürich".encode()), ("content-type", b"")]
    assert _lines(headers, b"") == [
        "ce_subject:17:Zuzug aus Zürich",
        "content-type:0:",
        "data-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ]


def test_the_order_of_the_headers_on_the_wire_does_not_matter(
    key: SigningKey, signed: list[tuple[str, bytes]]
) -> None:
    shuffled = list(signed)
    random.Random(7).shuffle(shuffled)
    assert shuffled != signed
    assert canonical_form(shuffled, VALUE) == canonical_form(signed, VALUE)
    key.public.verify(shuffled, VALUE)


def test_headers_that_are_not_signed_may_come_and_go(
    key: SigningKey, signed: list[tuple[str, bytes]]
) -> None:
    key.public.verify(_replaced(signed, "traceparent", None), VALUE)
    key.public.verify([*signed, ("tracestate", b"vendor=1"), ("hub-redrive", b"x"), ("CE_ID", b"y")], VALUE)


def test_the_content_type_header_is_signed_whatever_the_case_of_its_name(key: SigningKey) -> None:
    capitalised = [*_replaced(PARTNER_HEADERS, "content-type", None), ("Content-Type", b"application/json")]
    signed = key.sign_headers(capitalised, VALUE)
    assert "content-type:16:application/json" in _lines(signed)
    relayed = [("content-type" if name == "Content-Type" else name, value) for name, value in signed]
    key.public.verify(relayed, VALUE)  # a proxy that lower-cases header names changes nothing
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        key.public.verify(_replaced(signed, "Content-Type", b"application/json; charset=utf-8"), VALUE)


def test_signing_is_deterministic_and_replaces_an_earlier_signature(
    key: SigningKey, signed: list[tuple[str, bytes]]
) -> None:
    assert key.sign_headers(PARTNER_HEADERS, VALUE) == signed  # Ed25519 is deterministic
    again = key.sign_headers(signed, VALUE)
    assert again == signed  # never two ce_signature or ce_sigkeyid headers
    other = SigningKey.generate("lucerne-2026b").sign_headers(signed, VALUE)
    assert [v for n, v in other if n == "ce_sigkeyid"] == [b"lucerne-2026b"]


def test_a_value_cannot_fake_another_header() -> None:
    """An id that smuggles in a ``ce_referenceid`` line vs. a real ``ce_referenceid``: joined
    naively the two would read the same; the length prefixes keep them apart."""
    honest = [("ce_id", b"e"), ("ce_referenceid", b"r")]
    sneaky = [("ce_id", b"e\nce_referenceid:r")]

    def naive(headers: Headers) -> bytes:
        return b"\n".join(name.encode() + b":" + value for name, value in sorted(headers))

    assert naive(honest) == naive(sneaky)
    assert canonical_form(honest, VALUE) != canonical_form(sneaky, VALUE)


def test_a_signed_record_parses_as_an_envelope_with_its_key_id(signed: list[tuple[str, bytes]]) -> None:
    envelope = Envelope.from_headers(signed)
    assert envelope.sigkeyid == "lucerne-2026a"
    assert envelope.signature is not None
    assert len(base64.b64decode(envelope.signature)) == 64


def test_an_envelope_the_hub_writes_signs_and_verifies_through_its_headers(
    envelope: Envelope, key: SigningKey
) -> None:
    signed = key.sign_headers(envelope.to_headers(), VALUE)
    key.public.verify(signed, VALUE)
    assert Envelope.from_headers(signed).model_copy(update={"sigkeyid": None, "signature": None}) == envelope


def test_an_unsigned_envelope_has_no_signature_headers(envelope: Envelope) -> None:
    """Backwards compatible: producers that do not sign send the same headers as before."""
    names = {name for name, _ in envelope.to_headers()}
    assert not names & {"ce_sigkeyid", "ce_signature"}
    assert Envelope.from_headers(envelope.to_headers()).signature is None


def test_a_malformed_signature_header_is_an_envelope_error(envelope: Envelope) -> None:
    headers = [*envelope.to_headers(), ("ce_signature", b"not base64!")]
    with pytest.raises(EnvelopeError, match="invalid header ce_signature"):
        Envelope.from_headers(headers)


@pytest.mark.parametrize("signature", [b"not base64!", base64.b64encode(b"x" * 63), b""])
def test_a_signature_that_is_not_64_bytes_of_base64_is_bad(
    key: SigningKey, signed: list[tuple[str, bytes]], signature: bytes
) -> None:
    with pytest.raises(BadSignature, match="is not 64 bytes of base64"):
        key.public.verify(_replaced(signed, "ce_signature", signature), VALUE)


SIGNED_NAMES = sorted(
    {name for name, _ in PARTNER_HEADERS if name.startswith("ce_")} | {"content-type", "ce_sigkeyid"}
)


@pytest.mark.parametrize("name", SIGNED_NAMES)
def test_changing_one_byte_of_any_signed_header_breaks_the_signature(
    key: SigningKey, signed: list[tuple[str, bytes]], name: str
) -> None:
    [value] = [v for n, v in signed if n == name]
    changed = value[:-1] + bytes([value[-1] ^ 0x01])
    with pytest.raises(BadSignature):
        PublicKey(key.key_id, key.public.key).verify(_replaced(signed, name, changed), VALUE)


@pytest.mark.parametrize("name", [n for n in SIGNED_NAMES if n != "ce_sigkeyid"])
def test_removing_a_signed_header_breaks_the_signature(
    key: SigningKey, signed: list[tuple[str, bytes]], name: str
) -> None:
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        key.public.verify(_replaced(signed, name, None), VALUE)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ce_action", b"new"),
        ("ce_testdelivery", b"false"),
        ("ce_dataschema", b"urn:x"),
        ("ce_partnerref", b"1"),
    ],
)
def test_adding_a_ce_header_after_signing_breaks_the_signature(
    key: SigningKey, signed: list[tuple[str, bytes]], name: str, value: bytes
) -> None:
    """Even the value the hub would default to: the sender did not sign it."""
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        key.public.verify([*signed, (name, value)], VALUE)


def test_an_attacker_cannot_add_a_content_type_the_sender_left_out(key: SigningKey) -> None:
    signed = key.sign_headers(_replaced(PARTNER_HEADERS, "content-type", None), VALUE)
    with pytest.raises(BadSignature):
        key.public.verify([*signed, ("content-type", b"application/json")], VALUE)


def test_changing_one_byte_of_the_value_breaks_the_signature(
    key: SigningKey, signed: list[tuple[str, bytes]]
) -> None:
    with pytest.raises(BadSignature):
        key.public.verify(signed, VALUE.replace(b"1061", b"1062"))


def test_a_signature_by_another_key_under_the_same_id_is_a_forgery(key: SigningKey) -> None:
    forger = SigningKey.generate(key.key_id)  # the attacker claims the victim's key id
    forged = forger.sign_headers(PARTNER_HEADERS, VALUE)
    forger.public.verify(forged, VALUE)  # valid for the forger's own key ...
    with pytest.raises(BadSignature, match="does not verify with key lucerne-2026a"):
        key.public.verify(forged, VALUE)  # ... but not for the registered one


def test_swapping_the_key_id_header_breaks_the_signature(
    key: SigningKey, signed: list[tuple[str, bytes]]
) -> None:
    relabelled = _replaced(signed, "ce_sigkeyid", b"lucerne-2026b")
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        PublicKey("lucerne-2026b", key.public.key).verify(relabelled, VALUE)
    with pytest.raises(BadSignature, match="names key lucerne-2026b, not lucerne-2026a"):
        key.public.verify(relabelled, VALUE)


def test_an_unsigned_or_half_signed_event_is_unsigned(
    key: SigningKey, signed: list[tuple[str, bytes]]
) -> None:
    with pytest.raises(UnsignedEvent, match="event event-1 is not signed"):
        key.public.verify(PARTNER_HEADERS, VALUE)
    with pytest.raises(UnsignedEvent):
        key.public.verify(_replaced(signed, "ce_signature", None), VALUE)
    with pytest.raises(UnsignedEvent):
        key.public.verify(_replaced(signed, "ce_sigkeyid", None), VALUE)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ce_id", b"event-2"),
        ("ce_id", b"event-1"),  # even the same value twice
        ("Content-Type", b"application/json"),  # content-type in another case
        ("ce_sigkeyid", b"lucerne-2026a"),
    ],
)
def test_a_repeated_signed_header_is_refused(
    key: SigningKey, signed: list[tuple[str, bytes]], name: str, value: bytes
) -> None:
    with pytest.raises(AmbiguousHeaders, match=f"header {name.lower()} appears more than once"):
        key.public.verify([*signed, (name, value)], VALUE)


@pytest.mark.parametrize("name", ["ce_id", "Content-Type"])
def test_a_record_with_a_repeated_signed_header_cannot_be_signed(key: SigningKey, name: str) -> None:
    with pytest.raises(AmbiguousHeaders, match=f"header {name.lower()} appears more than once"):
        key.sign_headers([*PARTNER_HEADERS, (name, b"x")], VALUE)


def test_a_second_signature_is_refused(key: SigningKey, signed: list[tuple[str, bytes]]) -> None:
    [signature] = [v for n, v in signed if n == "ce_signature"]
    with pytest.raises(AmbiguousHeaders, match="carries 2 signatures"):
        key.public.verify([*signed, ("ce_signature", signature)], VALUE)


@pytest.mark.parametrize("name", ["ce_my_ext", "ce_Subject", "ce_a:1:b", "ce_", "ce_x\nce_y"])
def test_a_ce_header_that_is_no_cloudevents_attribute_name_is_refused(
    key: SigningKey, signed: list[tuple[str, bytes]], name: str
) -> None:
    with pytest.raises(AmbiguousHeaders, match="is no CloudEvents attribute"):
        key.public.verify([*signed, (name, b"v")], VALUE)
    with pytest.raises(AmbiguousHeaders, match="is no CloudEvents attribute"):
        key.sign_headers([*PARTNER_HEADERS, (name, b"v")], VALUE)


def test_a_signed_header_without_a_value_is_refused(key: SigningKey, signed: list[tuple[str, bytes]]) -> None:
    nulled: list[Any] = [*_replaced(signed, "ce_subject", None), ("ce_subject", None)]
    with pytest.raises(AmbiguousHeaders, match="ce_subject has no value"):
        key.public.verify(nulled, VALUE)


# RFC 3339 as other platforms write it; each is the same instant, 11:59:30.1 UTC or close.
TIMES = {
    "2026-03-01T11:59:30.1Z": dt.datetime(2026, 3, 1, 11, 59, 30, 100000, tzinfo=dt.UTC),
    "2026-03-01T11:59:30.123Z": dt.datetime(2026, 3, 1, 11, 59, 30, 123000, tzinfo=dt.UTC),
    "2026-03-01T11:59:30.000Z": dt.datetime(2026, 3, 1, 11, 59, 30, tzinfo=dt.UTC),
    "2026-03-01T11:59:30.123456789Z": dt.datetime(2026, 3, 1, 11, 59, 30, 123456, tzinfo=dt.UTC),
    "2026-03-01T11:59:30Z": dt.datetime(2026, 3, 1, 11, 59, 30, tzinfo=dt.UTC),
    "2026-03-01t11:59:30.5z": dt.datetime(2026, 3, 1, 11, 59, 30, 500000, tzinfo=dt.UTC),
    "2026-03-01T11:59:30+00:00": dt.datetime(2026, 3, 1, 11, 59, 30, tzinfo=dt.UTC),
    "2026-03-01T13:59:30.250+02:00": dt.datetime(2026, 3, 1, 11, 59, 30, 250000, tzinfo=dt.UTC),
    "2026-03-01T06:29:30-05:30": dt.datetime(2026, 3, 1, 11, 59, 30, tzinfo=dt.UTC),
}


@pytest.mark.parametrize("written", list(TIMES))
def test_any_rfc3339_time_verifies_and_is_judged_by_the_instant_it_denotes(
    key: SigningKey, written: str
) -> None:
    headers = key.sign_headers(_replaced(PARTNER_HEADERS, "ce_time", written.encode()), VALUE)
    key.public.verify(headers, VALUE)
    assert f"ce_time:{len(written)}:{written}" in _lines(headers)
    event_time = Envelope.from_headers(headers).time
    assert event_time == TIMES[written]
    check_freshness(event_time, NOW, max_age_s=31, max_future_skew_s=0)
    with pytest.raises(StaleEvent):
        check_freshness(event_time, NOW, max_age_s=29, max_future_skew_s=0)


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
