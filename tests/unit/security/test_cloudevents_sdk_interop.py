"""The hub's wire format is plain CloudEvents Kafka binary mode: the CloudEvents Python SDK's
Kafka binding reads a hub record, and a record it writes passes the hub's envelope parser,
contract validation and, signed as docs/partners/signing.md says over the SDK's own headers,
the registry's signature checks."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from contracts import Action, ArrivalRegistered, Envelope, MoveReported, parse_data, serialize_data
from contracts.channels import ingress_topic, partner_source
from hub.local.demo import LUCERNE, PORTAL, demo_person, move_report
from hub.security.signed_form import canonical_form
from hub.security.signing import (
    BadSignature,
    MisroutedRecord,
    PublicKey,
    SigningKey,
    check_freshness,
    check_record_key,
    verify_signed_by,
)
from services.registry.ingress import check_topic_owner

LUCERNE_OFFICE = "CH/MUN/1061/einwohnerdienste"
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass(frozen=True)
class Registered:
    """A partner key as the registry's mirror holds it (``hub.security.signing.RegisteredKey``)."""

    key_id: str
    partner_id: str
    public_key: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


def _hub_record() -> tuple[bytes, list[tuple[str, bytes]], bytes, Envelope, ArrivalRegistered]:
    """A record as the hub's own producers write one: envelope headers, signature, trace context."""
    data = ArrivalRegistered(
        municipality=LUCERNE, registered_on=dt.date(2026, 12, 3), remarks="Zuzug aus Kriens"
    )
    envelope = Envelope.new(
        data,
        source=partner_source(LUCERNE_OFFICE),
        business_process_id="eumzug-2026-000417",
        subject="resident-registration:ABC",
        reference_id="delivery-1",
        action=Action.RESPONSE,
        time=dt.datetime(2026, 12, 3, 7, 23, 44, 123456, tzinfo=dt.UTC),
    )
    value = serialize_data(data)
    headers = SigningKey.generate("lucerne-2026").sign_headers(envelope.to_headers(), value)
    return (
        envelope.businessprocessid.encode(),
        [*headers, ("traceparent", TRACEPARENT)],
        value,
        envelope,
        data,
    )


def test_the_sdk_reads_a_hub_record_with_every_attribute_and_the_data() -> None:
    key, headers, value, envelope, data = _hub_record()
    event = from_binary(KafkaMessage(headers=dict(headers), key=key, value=value), JSONFormat())

    assert isinstance(event, CloudEvent)
    assert event.get_specversion() == "1.0"
    assert (event.get_id(), event.get_source(), event.get_type()) == (
        envelope.id,
        envelope.source,
        envelope.type,
    )
    assert event.get_time() == envelope.time
    assert event.get_subject() == "resident-registration:ABC"
    assert event.get_dataschema() == ArrivalRegistered.dataschema()
    assert event.get_datacontenttype() == "application/json"
    extensions = {
        name: event.get_extension(name)
        for name in ("businessprocessid", "referenceid", "action", "testdelivery", "sigkeyid", "signature")
    }
    assert extensions == {
        "businessprocessid": "eumzug-2026-000417",
        "referenceid": "delivery-1",
        "action": "response",
        "testdelivery": "false",
        "sigkeyid": "lucerne-2026",
        "signature": dict(headers)["ce_signature"].decode(),
    }
    assert event.get_extension("partitionkey") == "eumzug-2026-000417"  # the Kafka key, as the SDK names it
    assert event.get_extension("traceparent") is None  # a plain header, not an attribute
    assert event.get_data() == json.loads(value) == data.model_dump(mode="json")
    assert ArrivalRegistered.model_validate(event.get_data()) == data


def test_what_the_sdk_writes_back_from_a_hub_record_is_what_was_signed_once_partitionkey_goes() -> None:
    """The SDK writes ``ce_time`` as the hub does (isoformat, ``Z``), so a record read and
    written again, the data as the bytes received, still verifies; but the SDK turns the Kafka
    key into the ``partitionkey`` attribute when reading and writes it back as a
    ``ce_partitionkey`` header, a signed header the original did not have: a relay that
    forwards records through the SDK must drop it (and give the key by ``key_mapper``)."""
    key, headers, value, _, _ = _hub_record()
    event = from_binary(KafkaMessage(headers=dict(headers), key=key, value=value), JSONFormat())
    signed = {name: v for name, v in headers if name != "traceparent"}

    naive = to_binary(CloudEvent(event.get_attributes(), value), JSONFormat())
    assert naive.headers.keys() - signed.keys() == {"ce_partitionkey"}
    assert canonical_form(list(naive.headers.items()), naive.value) != canonical_form(headers, value)

    attributes = {k: v for k, v in event.get_attributes().items() if k != "partitionkey"}
    again = to_binary(CloudEvent(attributes, value), JSONFormat(), key_mapper=lambda _: key)
    assert again.headers == signed
    assert again.key == key
    assert canonical_form(list(again.headers.items()), again.value) == canonical_form(headers, value)


def _sdk_move_report(now: dt.datetime, key_id: str) -> tuple[CloudEvent, MoveReported]:
    """A move report built with the SDK alone: attributes, hub extensions, the data as a dict."""
    report = move_report(demo_person(7))
    attributes = {
        "id": "sdk-7f3c",
        "source": partner_source(PORTAL),
        "type": MoveReported.event_type,
        "time": now,
        "datacontenttype": "application/json",
        "dataschema": MoveReported.dataschema(),
        "businessprocessid": "eumzug-sdk-1",
        "action": "new",
        "testdelivery": "true",
        "sigkeyid": key_id,
        "partitionkey": "eumzug-sdk-1",  # the SDK's key mapper makes it the Kafka key
    }
    return CloudEvent(attributes, report.model_dump(mode="json")), report


def _sign_sdk_message(message: KafkaMessage, key: SigningKey) -> list[tuple[str, bytes]]:
    """docs/partners/signing.md over the SDK's headers as they will be sent, key id included."""
    headers = list(message.headers.items())
    signature = key.private_key.sign(canonical_form(headers, message.value))
    return [*headers, ("ce_signature", base64.b64encode(signature))]


def test_a_record_the_sdk_writes_passes_the_hubs_envelope_contract_and_signature_checks() -> None:
    now = dt.datetime.now(dt.UTC)
    key = SigningKey.generate("portal-sdk-2026")
    event, report = _sdk_move_report(now, key.key_id)
    message = to_binary(event, JSONFormat())
    # The binding as written by the SDK: prefixed headers, content-type, the data as JSON.
    assert message.headers["content-type"] == b"application/json"
    assert message.headers["ce_type"] == MoveReported.event_type.encode()
    assert "ce_partitionkey" in message.headers  # an extension the hub does not know: ignored, and signed
    assert message.key == "eumzug-sdk-1"  # a str: the Kafka client encodes it (UTF-8)
    record_key = message.key.encode()

    headers = _sign_sdk_message(message, key)
    envelope = Envelope.from_headers(headers)
    assert (envelope.id, envelope.source, envelope.type) == (
        "sdk-7f3c",
        partner_source(PORTAL),
        event.get_type(),
    )
    assert envelope.time == now
    assert (envelope.businessprocessid, envelope.action, envelope.testdelivery) == (
        "eumzug-sdk-1",
        Action.NEW,
        True,
    )
    assert envelope.dataschema == MoveReported.dataschema()
    assert json.loads(message.value) == event.get_data()
    assert parse_data(envelope.type, message.value) == report

    # What the registry checks before it opens a case, in its order.
    check_topic_owner(ingress_topic(PORTAL), envelope.source)
    registered = Registered(key.key_id, PORTAL, key.public.base64, valid_from=now - dt.timedelta(days=1))
    verify_signed_by(headers, message.value, registered, sender=PORTAL, now=now)
    check_freshness(envelope.time, now, max_age_s=6 * 3600, max_future_skew_s=300)
    check_record_key(envelope, record_key)
    PublicKey(key.key_id, key.private_key.public_key()).verify(headers, message.value)


def test_an_sdk_record_changed_after_signing_or_re_keyed_is_refused() -> None:
    now = dt.datetime.now(dt.UTC)
    key = SigningKey.generate("portal-sdk-2026")
    event, _ = _sdk_move_report(now, key.key_id)
    message = to_binary(event, JSONFormat())
    headers = _sign_sdk_message(message, key)
    registered = Registered(key.key_id, PORTAL, key.public.base64, valid_from=now - dt.timedelta(days=1))

    # Written again by the SDK after signing, with a subject added: the signed form changed.
    changed = to_binary(
        CloudEvent({**event.get_attributes(), "subject": "x"}, event.get_data()), JSONFormat()
    )
    resigned = [*changed.headers.items(), ("ce_signature", dict(headers)["ce_signature"])]
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        verify_signed_by(resigned, changed.value, registered, sender=PORTAL, now=now)
    with pytest.raises(MisroutedRecord):
        check_record_key(Envelope.from_headers(headers), b"another-case")
