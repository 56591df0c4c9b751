"""The partner client's checks without a broker: what it signs and sends, which deliveries it
takes (signed by the hub, keyed by their case, addressed to it), that a repeat is dropped, and
that the trace context of a delivery goes on with the answer."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hub_partner import (
    BadSignature,
    Delivery,
    MisroutedRecord,
    PartnerClient,
    PublicKey,
    RecentIds,
    SigningKey,
    UnsignedEvent,
    delivery_topic,
    ingress_topic,
)
from hub_partner.topics import consumer_group
from hub_partner.tracing import trace_context, trace_headers

from contracts import KRIENS, ArrivalRegistered, CaseDelivery, Envelope, MoveReported
from contracts.catalog import serialize_data
from contracts.channels import HUB_DELIVERY_SOURCE
from hub.local.demo import demo_person, move_report
from hub.runtime import topics as hub_topics
from hub.security.acls import partner_group
from hub.security.signing import PublicKey as HubPublicKey

ME = "CH/MUN/1061/einwohnerdienste"
SOMEONE_ELSE = "CH/MUN/1058/einwohnerdienste"
CASE = "eumzug-2026-000417"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HUB_KEY = SigningKey("hub-0123456789abcdef", Ed25519PrivateKey.generate())
PARTNER_KEY = SigningKey("lucerne-2026a", Ed25519PrivateKey.generate())


def _client(**options: object) -> PartnerClient:
    return PartnerClient(
        "localhost:9092",
        ME,
        signing_key=PARTNER_KEY,
        hub_keys={HUB_KEY.key_id: HUB_KEY.public},
        **options,  # type: ignore[arg-type]
    )


def _delivery_record(
    *,
    recipient: str = ME,
    key: bytes | None = CASE.encode(),
    signer: SigningKey | None = HUB_KEY,
    event_id: str | None = None,
    traceparent: str | None = TRACEPARENT,
) -> SimpleNamespace:
    """A record as the hub puts it on a partner's delivery topic."""
    report = move_report(demo_person(), departure=KRIENS, arrival=KRIENS)
    data = CaseDelivery(
        case_type="relocation",
        event_type_delivered=MoveReported.event_type,
        recipient=recipient,
        purpose="register the arrival",
        legal_basis="RHG Art. 11",
        data=report.model_dump(mode="json", include={"move_date"}),
    )
    envelope = Envelope.new(data, source=HUB_DELIVERY_SOURCE, business_process_id=CASE, event_id=event_id)
    value = serialize_data(data)
    headers = envelope.to_headers()
    if signer is not None:
        headers = signer.sign_headers(headers, value)
    if traceparent is not None:
        headers = [*headers, ("traceparent", traceparent.encode()), ("tracestate", b"lu=7")]
    return SimpleNamespace(
        topic=delivery_topic(recipient), partition=0, offset=7, key=key, value=value, headers=headers
    )


def test_the_topics_are_the_partners_own_under_the_hubs_prefix() -> None:
    assert ingress_topic(ME) == "hub.ingress.ch.mun.1061.einwohnerdienste"
    assert delivery_topic(ME, "test-7") == "test-7.delivery.ch.mun.1061.einwohnerdienste"
    client = _client(topic_prefix="staging")
    assert client.ingress_topic == "staging.ingress.ch.mun.1061.einwohnerdienste"
    with pytest.raises(ValueError, match="prefix"):
        ingress_topic(ME, "Not A Prefix")


def test_a_delivery_the_hub_signed_for_this_partner_is_taken_with_its_trace_context() -> None:
    delivery = _client().take(_delivery_record())
    assert delivery is not None
    assert isinstance(delivery.data, CaseDelivery)
    assert delivery.data.recipient == ME
    assert delivery.trace_context == {"traceparent": TRACEPARENT, "tracestate": "lu=7"}
    assert delivery.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_genuine_delivery_for_another_partner_is_refused_as_misrouted() -> None:
    with pytest.raises(MisroutedRecord, match=f"addressed to {SOMEONE_ELSE}"):
        _client().take(_delivery_record(recipient=SOMEONE_ELSE))


@pytest.mark.parametrize("key", [b"eumzug-2026-000999", None], ids=["re-keyed", "no-key"])
def test_a_delivery_keyed_other_than_by_its_case_is_refused_as_misrouted(key: bytes | None) -> None:
    with pytest.raises(MisroutedRecord, match="not by its case"):
        _client().take(_delivery_record(key=key))


def test_a_delivery_signed_by_anyone_but_a_trusted_hub_key_is_refused() -> None:
    forger = SigningKey(HUB_KEY.key_id, Ed25519PrivateKey.generate())
    with pytest.raises(BadSignature):
        _client().take(_delivery_record(signer=forger))
    with pytest.raises(UnsignedEvent):
        _client().take(_delivery_record(signer=None))


def test_a_delivery_seen_again_is_dropped_and_counted() -> None:
    client = _client()
    record = _delivery_record(event_id="delivery-1")
    assert client.take(record) is not None
    assert client.take(record) is None
    assert client.take(_delivery_record(event_id="delivery-2")) is not None
    assert client.duplicates_dropped == 1


def test_the_remembered_ids_are_bounded_and_forget_the_least_recently_seen() -> None:
    recent = RecentIds(capacity=3)
    assert [recent.seen_before(i) for i in ("a", "b", "c")] == [False, False, False]
    assert recent.seen_before("a")  # now the most recent: "b" is the oldest
    assert not recent.seen_before("d")  # pushes out "b"
    assert len(recent) == 3
    assert "b" not in recent
    assert "a" in recent
    assert not recent.seen_before("b")  # forgotten, so taken as new
    with pytest.raises(ValueError, match="at least 1"):
        RecentIds(capacity=0)


def test_a_client_remembers_as_many_ids_as_it_is_told() -> None:
    client = _client(remembered_ids=1)
    first, second = _delivery_record(event_id="d-1"), _delivery_record(event_id="d-2")
    assert client.take(first) is not None
    assert client.take(second) is not None
    assert client.take(first) is not None  # forgotten after one other id: a repeat gets through


def test_an_answer_is_signed_keyed_by_the_case_and_carries_the_deliverys_trace_context() -> None:
    client = _client()
    delivery = client.take(_delivery_record())
    assert isinstance(delivery, Delivery)
    answer = ArrivalRegistered(municipality=KRIENS, registered_on=dt.date(2026, 12, 3))
    envelope, value, headers = client.signed_record(
        answer,
        business_process_id=delivery.envelope.businessprocessid,
        reference_id=delivery.envelope.id,
        trace=delivery.trace_context,
    )
    assert envelope.source == "urn:ch:lu:hub:partner:" + ME
    assert envelope.referenceid == delivery.envelope.id
    assert envelope.sigkeyid == PARTNER_KEY.key_id
    assert trace_context(headers) == {"traceparent": TRACEPARENT, "tracestate": "lu=7"}
    # The hub's own verifier accepts it: the trace headers added after signing are not signed.
    HubPublicKey(PARTNER_KEY.key_id, PARTNER_KEY.public.key).verify(headers, value)
    PublicKey(PARTNER_KEY.key_id, PARTNER_KEY.public.key).verify(headers, value)


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"traceparent": "garbage"},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "tracestate": "a=1"},
    ],
    ids=["none", "malformed", "all-zero-trace-id"],
)
def test_an_invalid_trace_context_is_not_passed_on(context: dict[str, str]) -> None:
    assert trace_headers(context) == []


@pytest.mark.asyncio
async def test_publishing_before_start_says_so() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await _client().publish(
            ArrivalRegistered(municipality=KRIENS, registered_on=dt.date(2026, 12, 3)),
            business_process_id=CASE,
        )


@pytest.mark.parametrize("partner_id", [ME, "CH/CAN/LU/steuerverwaltung", "CH/MUN/1063/Einwohner_Dienste"])
@pytest.mark.parametrize("prefix", ["hub", "test-7.lucerne"])
def test_the_clients_names_are_the_ones_the_hubs_acls_grant(partner_id: str, prefix: str) -> None:
    """hub_partner cannot import the hub's names, so they are checked against each other here."""
    assert ingress_topic(partner_id, prefix) == hub_topics.on_cluster(
        hub_topics.ingress_topic(partner_id), prefix
    )
    assert delivery_topic(partner_id, prefix) == hub_topics.on_cluster(
        hub_topics.delivery_topic(partner_id), prefix
    )
    assert consumer_group(partner_id) == partner_group(partner_id)
