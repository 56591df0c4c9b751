"""A minimal partner client: how an agency's system talks to the hub over Kafka.

It publishes contracts to its own ingress topic as CloudEvents (binary mode) with W3C trace
context, each signed with the partner's Ed25519 key, and reads the partner's own delivery
topic, accepting only deliveries the hub signed. The demo and the end-to-end tests use it
as the partners; the partner SDK will grow from it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.trace import SpanKind

from contracts import Action, Contract, Envelope, EnvelopeError, parse_data
from contracts.case import CaseDelivery
from contracts.catalog import serialize_data
from contracts.channels import PARTNER_SOURCE_PREFIX
from hub.errors import ConfigurationError
from hub.runtime import topics
from hub.runtime.telemetry import consumer_span, current_trace_headers, messaging_attributes, tracer
from hub.security.keyring import Keyring
from hub.security.signing import (
    Headers,
    MisroutedRecord,
    PublicKey,
    SignatureClaim,
    SignatureRefused,
    SigningKey,
    UnknownSigningKey,
    UnsignedEvent,
    check_record_key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    envelope: Envelope
    data: Contract
    trace_id: str


@dataclass(frozen=True)
class RefusedDelivery:
    """A record on the partner's topic that the hub did not provably send."""

    topic: str
    partition: int
    offset: int
    error: SignatureRefused


def sign_as(keyring: Keyring, partner_id: str, headers: Headers, value: bytes) -> list[tuple[str, bytes]]:
    """``headers`` signed with ``partner_id``'s key from ``keyring``.

    For code that builds its own records (load and fault tests) instead of ``publish``.
    """
    key = keyring.signing_key(partner_id)
    if key is None:
        raise ConfigurationError(f"no signing key for {partner_id} in the keyring")
    return key.sign_headers(headers, value)


def sign_record(keyring: Keyring, headers: Headers, value: bytes) -> list[tuple[str, bytes]]:
    """A hand-built record's headers, signed for the partner its ``ce_source`` names.

    For load and fault tests that build records before the supervisor provisions keys and
    send them later: call this at send time. A record that is no CloudEvent (a poison
    record), or whose sender has no key in this process, is returned as it is.
    """
    try:
        envelope = Envelope.from_headers(headers)
    except EnvelopeError:
        return list(headers)
    if not envelope.source.startswith(PARTNER_SOURCE_PREFIX):
        return list(headers)
    key = keyring.signing_key(envelope.source.removeprefix(PARTNER_SOURCE_PREFIX))
    if key is None:
        return list(headers)
    return key.sign_headers(headers, value)


def verify_delivery(headers: Headers, value: bytes, hub_keys: Mapping[str, PublicKey]) -> None:
    """Raise a ``SignatureRefused`` unless a trusted hub key signed exactly this record.

    ``headers`` and ``value`` are the record's as received: the signature covers their bytes.
    """
    claim = SignatureClaim.of(headers)
    if not claim.signed:
        raise UnsignedEvent(f"delivery {claim.event_id[:128]} is not signed by the hub")
    key = hub_keys.get(claim.key_id or "")
    if key is None:
        raise UnknownSigningKey(
            f"delivery {claim.event_id[:128]} is signed with {claim.key_id}, not a hub key"
        )
    key.verify(headers, value)


class PartnerClient:
    """One partner's connection to the hub.

    ``signing_key`` signs everything it publishes; ``hub_keys`` (key id -> public key)
    are the hub keys whose deliveries it accepts. A partner without a key publishes
    unsigned, which the hub refuses; without hub keys it accepts no delivery.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        partner_id: str,
        *,
        idempotence: bool = False,
        signing_key: SigningKey | None = None,
        hub_keys: Mapping[str, PublicKey] | None = None,
        topic_prefix: str = topics.HUB_PREFIX,
    ) -> None:
        # The hub's HUB_TOPIC_PREFIX: "<prefix>.ingress.<partner>", "<prefix>.delivery.<partner>".
        self.prefix = topic_prefix
        self.partner_id = partner_id
        self.source = PARTNER_SOURCE_PREFIX + partner_id
        self._bootstrap = bootstrap_servers
        self.signing_key = signing_key
        self.hub_keys: Mapping[str, PublicKey] = hub_keys if hub_keys is not None else {}
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            acks="all",
            enable_idempotence=idempotence,
            client_id=f"partner-{partner_id}",
        )
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()
        if self._consumer is not None:
            await self._consumer.stop()

    async def publish(
        self,
        data: Contract,
        *,
        business_process_id: str,
        reference_id: str | None = None,
        action: Action = Action.NEW,
        test_delivery: bool = False,
        topic: str | None = None,
    ) -> Envelope:
        """Sign and send ``data``; by default to this partner's own ingress topic, the only one
        its Kafka principal may write and the only one whose events the registry accepts as its."""
        topic = (
            topic
            if topic is not None
            else topics.on_cluster(topics.ingress_topic(self.partner_id), self.prefix)
        )
        envelope = Envelope.new(
            data,
            source=self.source,
            business_process_id=business_process_id,
            reference_id=reference_id,
            action=action,
            test_delivery=test_delivery,
        )
        attributes = messaging_attributes(
            topic=topic,
            operation="send",
            key=business_process_id,
            event_id=envelope.id,
            event_type=envelope.type,
            event_source=envelope.source,
            case_id=business_process_id,
        )
        value = serialize_data(data)
        headers = envelope.to_headers()
        if self.signing_key is not None:
            headers = self.signing_key.sign_headers(headers, value)
            envelope = Envelope.from_headers(headers)
        else:
            log.info("%s has no signing key: publishing %s unsigned", self.partner_id, envelope.id)
        with tracer().start_as_current_span(f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes):
            headers += [(k, v.encode()) for k, v in current_trace_headers().items()]
            await self._producer.send_and_wait(
                topic, value, key=business_process_id.encode(), headers=headers
            )
        return envelope

    def _check_addressed_here(self, envelope: Envelope, data: Contract, key: bytes | None) -> None:
        """A genuine hub delivery may still be a copy meant for someone else, or re-keyed:
        the signature covers the value (and so its ``recipient``), not where it lies."""
        check_record_key(envelope, key)
        if isinstance(data, CaseDelivery) and data.recipient != self.partner_id:
            raise MisroutedRecord(
                f"delivery {envelope.id[:128]} is addressed to {data.recipient}, not {self.partner_id}"
            )

    async def deliveries(
        self, *, on_refused: Callable[[RefusedDelivery], None] | None = None, **consumer_options: Any
    ) -> AsyncIterator[Delivery]:
        """Yield deliveries from this partner's topic, each inside its ``process`` span.

        Only deliveries signed by a trusted hub key are yielded, and they are checked before
        their data is parsed. Anything else is refused: its offset is committed (it would
        fail the same way again) and ``on_refused`` is told, or, without it, the
        ``SignatureRefused`` is raised.
        """
        if not self.hub_keys:
            raise ConfigurationError(f"{self.partner_id} trusts no hub key: cannot verify deliveries")
        topic = topics.on_cluster(topics.delivery_topic(self.partner_id), self.prefix)
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self._bootstrap,
            group_id=f"partner.{self.partner_id}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **consumer_options,
        )
        await self._consumer.start()
        async for record in self._consumer:
            envelope = Envelope.from_headers(record.headers)
            try:
                # The signature first: only data the hub signed is parsed at all.
                verify_delivery(record.headers, record.value or b"", self.hub_keys)
                data = parse_data(envelope.type, record.value or b"")
                self._check_addressed_here(envelope, data, record.key)
            except SignatureRefused as error:
                await self._consumer.commit()
                refused = RefusedDelivery(record.topic, record.partition, record.offset, error)
                if on_refused is None:
                    raise
                on_refused(refused)
                continue
            attributes = messaging_attributes(
                topic=topic,
                operation="process",
                partition=record.partition,
                offset=record.offset,
                consumer_group=f"partner.{self.partner_id}",
                event_id=envelope.id,
                event_type=envelope.type,
                event_source=envelope.source,
                case_id=envelope.businessprocessid,
            )
            with consumer_span(record.headers, attributes, topic) as span:
                yield Delivery(envelope, data, format(span.get_span_context().trace_id, "032x"))
            await self._consumer.commit()
