"""A partner's connection to the hub over Kafka.

``PartnerClient.publish`` sends a contract to the partner's own ingress topic as a CloudEvent
in binary mode (attributes in ``ce_`` headers, the data as JSON value), keyed by the case id
and signed with the partner's Ed25519 key. Answering a delivery, it passes that delivery's
``traceparent``/``tracestate`` on, so the hub sees the answer on the case's trace.

``PartnerClient.deliveries`` reads the partner's own delivery topic and yields only what the
hub provably sent to this partner: signed by a trusted hub key, keyed by its case id, and
addressed to this partner. A delivery seen again (at-least-once delivery) is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import Action, Contract, Envelope, parse_data
from contracts.case import CaseDelivery
from contracts.catalog import serialize_data
from contracts.channels import PARTNER_SOURCE_PREFIX
from hub_partner.errors import DeliveryRefused, MisroutedRecord, UnknownSigningKey, UnsignedEvent
from hub_partner.recent_ids import DEFAULT_CAPACITY, RecentIds
from hub_partner.signing import KEY_ID_HEADER, SIGNATURE_HEADER, Headers, PublicKey, SigningKey, header_text
from hub_partner.topics import DEFAULT_PREFIX, consumer_group, delivery_topic, ingress_topic
from hub_partner.tracing import trace_context, trace_headers, trace_id_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """A delivery the hub signed for this partner, parsed."""

    envelope: Envelope
    data: Contract
    # traceparent/tracestate as received: pass them on with the answer (``publish(in_reply_to=...)``).
    trace_context: Mapping[str, str]
    # The record's place and headers as received, for callers that trace or log on their own.
    topic: str
    partition: int
    offset: int
    headers: Headers = field(repr=False)

    @property
    def trace_id(self) -> str | None:
        return trace_id_of(self.trace_context)


@dataclass(frozen=True)
class RefusedDelivery:
    """A record on the partner's topic that the hub did not provably send to it."""

    topic: str
    partition: int
    offset: int
    error: DeliveryRefused


def verify_delivery(headers: Headers, value: bytes | None, hub_keys: Mapping[str, PublicKey]) -> None:
    """Raise a ``SignatureRefused`` unless a trusted hub key signed exactly this record.

    ``headers`` and ``value`` are the record's as received: the signature covers their bytes.
    """
    event_id = (header_text(headers, "ce_id") or "(no ce_id)")[:128]
    key_id = header_text(headers, KEY_ID_HEADER)
    if key_id is None or header_text(headers, SIGNATURE_HEADER) is None:
        raise UnsignedEvent(f"delivery {event_id} is not signed by the hub")
    key = hub_keys.get(key_id)
    if key is None:
        raise UnknownSigningKey(f"delivery {event_id} is signed with {key_id[:128]}, not a hub key")
    key.verify(headers, value)


def check_addressed_to(partner_id: str, envelope: Envelope, data: Contract, key: bytes | None) -> None:
    """Refuse a genuine hub delivery that lies in the wrong place.

    The signature covers the attributes and the value (and so the ``recipient``), not the
    record's Kafka key or topic: a delivery for another partner copied onto this topic, or a
    record re-keyed off its case's partition, still verifies.
    """
    if key != envelope.businessprocessid.encode():
        shown = key[:64].decode(errors="replace") if key is not None else "no key"
        raise MisroutedRecord(
            f"delivery {envelope.id[:128]} is keyed {shown!r}, not by its case "
            f"{envelope.businessprocessid[:128]!r}"
        )
    if isinstance(data, CaseDelivery) and data.recipient != partner_id:
        raise MisroutedRecord(
            f"delivery {envelope.id[:128]} is addressed to {data.recipient}, not {partner_id}"
        )


class PartnerClient:
    """One partner's connection to the hub.

    ``signing_key`` signs everything it publishes (the hub refuses unsigned events);
    ``hub_keys`` (key id -> public key, from ``hub keys show --json``) are the hub keys whose
    deliveries it accepts. ``topic_prefix`` is the hub's ``HUB_TOPIC_PREFIX``.
    ``remembered_ids`` bounds how many recent delivery ids it keeps to drop repeats.
    ``idempotence`` turns on Kafka's idempotent producer where the broker supports it.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        partner_id: str,
        *,
        signing_key: SigningKey | None = None,
        hub_keys: Mapping[str, PublicKey] | None = None,
        topic_prefix: str = DEFAULT_PREFIX,
        idempotence: bool = False,
        remembered_ids: int = DEFAULT_CAPACITY,
        **producer_options: Any,
    ) -> None:
        self.partner_id = partner_id
        self.source = PARTNER_SOURCE_PREFIX + partner_id
        self.prefix = topic_prefix
        self.ingress_topic = ingress_topic(partner_id, topic_prefix)
        self.delivery_topic = delivery_topic(partner_id, topic_prefix)
        self.signing_key = signing_key
        self.hub_keys: Mapping[str, PublicKey] = hub_keys if hub_keys is not None else {}
        self.recent_ids = RecentIds(remembered_ids)
        self.duplicates_dropped = 0
        self._bootstrap = bootstrap_servers
        self._producer_options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": idempotence,
            "client_id": f"partner-{partner_id}",
            **producer_options,
        }
        # Made in start(): aiokafka binds its clients to the running event loop, and signing or
        # checking records (signed_record, take) needs no connection at all.
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self._producer is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, **self._producer_options)
            await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> PartnerClient:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def signed_record(
        self,
        data: Contract,
        *,
        business_process_id: str,
        reference_id: str | None = None,
        action: Action = Action.NEW,
        test_delivery: bool = False,
        trace: Mapping[str, str] | None = None,
    ) -> tuple[Envelope, bytes, list[tuple[str, bytes]]]:
        """The envelope, value and headers ``publish`` sends for ``data``, without sending."""
        envelope = Envelope.new(
            data,
            source=self.source,
            business_process_id=business_process_id,
            reference_id=reference_id,
            action=action,
            test_delivery=test_delivery,
        )
        value = serialize_data(data)
        headers = envelope.to_headers()
        if self.signing_key is not None:
            headers = self.signing_key.sign_headers(headers, value)
            envelope = Envelope.from_headers(headers)
        else:
            log.info("%s has no signing key: publishing %s unsigned", self.partner_id, envelope.id)
        # Trace headers are not signed: added after signing, they leave the signature intact.
        return envelope, value, [*headers, *trace_headers(trace or {})]

    async def publish(
        self,
        data: Contract,
        *,
        business_process_id: str | None = None,
        reference_id: str | None = None,
        action: Action = Action.NEW,
        test_delivery: bool = False,
        in_reply_to: Delivery | None = None,
        trace: Mapping[str, str] | None = None,
        topic: str | None = None,
    ) -> Envelope:
        """Sign and send ``data`` to this partner's ingress topic, keyed by the case id.

        Answering ``in_reply_to``, its case id, its id (as ``referenceid``) and its trace
        context are the defaults. ``trace`` sets the trace context explicitly. ``topic`` is for
        tests of the hub's refusals only: the hub reads a partner's events from its own topic.
        """
        if in_reply_to is not None:
            business_process_id = business_process_id or in_reply_to.envelope.businessprocessid
            reference_id = reference_id or in_reply_to.envelope.id
            trace = trace if trace is not None else in_reply_to.trace_context
        if business_process_id is None:
            raise ValueError("publish needs a case id (business_process_id) or the delivery it answers")
        if self._producer is None:
            raise RuntimeError(f"{self.partner_id}'s client is not started: call start() first")
        envelope, value, headers = self.signed_record(
            data,
            business_process_id=business_process_id,
            reference_id=reference_id,
            action=action,
            test_delivery=test_delivery,
            trace=trace,
        )
        await self._producer.send_and_wait(
            topic if topic is not None else self.ingress_topic,
            value,
            key=business_process_id.encode(),
            headers=headers,
        )
        return envelope

    def take(self, record: Any) -> Delivery | None:
        """``record`` (an aiokafka ``ConsumerRecord``) as a ``Delivery``; None if its ``ce_id``
        was taken recently (a repeat); a ``DeliveryRefused`` if the hub did not send it here."""
        delivery = self.accept(record)
        if self.recent_ids.seen_before(delivery.envelope.id):
            self.duplicates_dropped += 1
            log.debug("%s: dropped delivery %s, taken before", self.partner_id, delivery.envelope.id)
            return None
        return delivery

    def accept(self, record: Any) -> Delivery:
        """``record`` (an aiokafka ``ConsumerRecord``) as a ``Delivery``, or a ``DeliveryRefused``.

        The signature first: only data the hub signed is parsed at all. Repeats are ``take``'s.
        """
        headers: Headers = list(record.headers or ())
        value: bytes = record.value or b""
        verify_delivery(headers, value, self.hub_keys)
        envelope = Envelope.from_headers(headers)
        data = parse_data(envelope.type, value)
        check_addressed_to(self.partner_id, envelope, data, record.key)
        return Delivery(
            envelope, data, trace_context(headers), record.topic, record.partition, record.offset, headers
        )

    async def deliveries(
        self,
        *,
        on_refused: Callable[[RefusedDelivery], None] | None = None,
        **consumer_options: Any,
    ) -> AsyncIterator[Delivery]:
        """Yield the deliveries on this partner's topic that the hub sent to it, once each.

        A refused record's offset is committed (it would fail the same way again) and
        ``on_refused`` is told, or, without it, the ``DeliveryRefused`` is raised. A delivery
        whose ``ce_id`` was taken recently is dropped. A delivery's offset is committed when
        the loop asks for the next one, so one that was being handled when the client died
        comes again.
        """
        if not self.hub_keys:
            raise ValueError(f"{self.partner_id} trusts no hub key: cannot verify deliveries")
        self._consumer = consumer = AIOKafkaConsumer(
            self.delivery_topic,
            bootstrap_servers=self._bootstrap,
            group_id=consumer_group(self.partner_id),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **consumer_options,
        )
        await consumer.start()
        async for record in consumer:
            try:
                delivery = self.take(record)
            except DeliveryRefused as error:
                await consumer.commit()
                if on_refused is None:
                    raise
                on_refused(RefusedDelivery(record.topic, record.partition, record.offset, error))
                continue
            if delivery is not None:
                yield delivery
            await consumer.commit()
