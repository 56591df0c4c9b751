"""The partner client as the hub's own tooling uses it: the demo's agencies, chaos, the tests.

A thin adapter over ``hub_partner`` (the separately installable partner distribution in
``partner/``): it takes the hub's keys and keyring, adds the hub's OpenTelemetry spans (a
producer span per send, a consumer span per delivery, so a case's trace runs through its
agencies), and reports refusals with the hub's own error classes, which its tests and logs
name. What goes on the wire, and every check of a delivery, is ``hub_partner``'s.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import hub_partner
from hub_partner.topics import consumer_group
from opentelemetry.trace import SpanKind

from contracts import Action, Contract, Envelope, EnvelopeError
from contracts.channels import PARTNER_SOURCE_PREFIX
from hub.errors import ConfigurationError
from hub.runtime import topics
from hub.runtime.telemetry import consumer_span, current_trace_headers, messaging_attributes, tracer
from hub.security import signing_errors
from hub.security.keyring import Keyring
from hub.security.signing import (
    Headers,
    PublicKey,
    SignatureClaim,
    SigningKey,
    UnknownSigningKey,
    UnsignedEvent,
)

log = logging.getLogger(__name__)

# hub_partner's refusals as the hub's classes of the same reason (docs/partners/signing.md, section 6).
_HUB_ERRORS: dict[type[hub_partner.DeliveryRefused], type[signing_errors.SignatureRefused]] = {
    hub_partner.AmbiguousHeaders: signing_errors.AmbiguousHeaders,
    hub_partner.BadSignature: signing_errors.BadSignature,
    hub_partner.UnsignedEvent: signing_errors.UnsignedEvent,
    hub_partner.UnknownSigningKey: signing_errors.UnknownSigningKey,
    hub_partner.MisroutedRecord: signing_errors.MisroutedRecord,
    hub_partner.SignatureRefused: signing_errors.SignatureRefused,
    hub_partner.DeliveryRefused: signing_errors.SignatureRefused,
}


def hub_error(error: hub_partner.DeliveryRefused) -> signing_errors.SignatureRefused:
    """``error`` as the hub's class for the same reason (the most specific one that matches)."""
    for cls in type(error).__mro__:
        if cls in _HUB_ERRORS:
            return _HUB_ERRORS[cls](str(error))
    return signing_errors.SignatureRefused(str(error))


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
    error: signing_errors.SignatureRefused


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


class _PartnerKeys(Mapping[str, hub_partner.PublicKey]):
    """The hub's trusted keys as ``hub_partner`` keys, read through: a ``Keyring``'s view is
    live (keys trusted after the client was made count), so nothing is copied."""

    def __init__(self, hub_keys: Mapping[str, PublicKey]) -> None:
        self._hub_keys = hub_keys

    def __getitem__(self, key_id: str) -> hub_partner.PublicKey:
        key = self._hub_keys[key_id]
        return hub_partner.PublicKey(key.key_id, key.key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._hub_keys)

    def __len__(self) -> int:
        return len(self._hub_keys)


class PartnerClient:
    """One partner's connection to the hub, with the hub's keys and spans.

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
        self.partner_id = partner_id
        self.prefix = topic_prefix
        self.signing_key = signing_key
        self.hub_keys: Mapping[str, PublicKey] = hub_keys if hub_keys is not None else {}
        self.client = hub_partner.PartnerClient(
            bootstrap_servers,
            partner_id,
            signing_key=(
                hub_partner.SigningKey(signing_key.key_id, signing_key.private_key)
                if signing_key is not None
                else None
            ),
            hub_keys=_PartnerKeys(self.hub_keys),
            topic_prefix=topic_prefix,
            idempotence=idempotence,
        )
        self.source = self.client.source

    async def start(self) -> None:
        await self.client.start()

    async def stop(self) -> None:
        await self.client.stop()

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
        topic = topic if topic is not None else self.client.ingress_topic
        with tracer().start_as_current_span(f"send {topic}", kind=SpanKind.PRODUCER) as span:
            envelope = await self.client.publish(
                data,
                business_process_id=business_process_id,
                reference_id=reference_id,
                action=action,
                test_delivery=test_delivery,
                trace=current_trace_headers(),
                topic=topic,
            )
            span.set_attributes(
                messaging_attributes(
                    topic=topic,
                    operation="send",
                    key=business_process_id,
                    event_id=envelope.id,
                    event_type=envelope.type,
                    event_source=envelope.source,
                    case_id=business_process_id,
                )
            )
        return envelope

    async def deliveries(
        self, *, on_refused: Callable[[RefusedDelivery], None] | None = None, **consumer_options: Any
    ) -> AsyncIterator[Delivery]:
        """Yield deliveries from this partner's topic, each inside its ``process`` span.

        Only deliveries signed by a trusted hub key and addressed to this partner are yielded,
        each once (``hub_partner`` drops a repeated ``ce_id``). Anything else is refused: its
        offset is committed (it would fail the same way again) and ``on_refused`` is told, or,
        without it, the hub's ``SignatureRefused`` for the reason is raised.
        """
        if not self.hub_keys:
            raise ConfigurationError(f"{self.partner_id} trusts no hub key: cannot verify deliveries")
        topic = self.client.delivery_topic

        def tell(refused: hub_partner.RefusedDelivery) -> None:
            if on_refused is not None:
                error = hub_error(refused.error)
                on_refused(RefusedDelivery(refused.topic, refused.partition, refused.offset, error))

        try:
            async for delivery in self.client.deliveries(
                on_refused=tell if on_refused is not None else None, **consumer_options
            ):
                envelope = delivery.envelope
                attributes = messaging_attributes(
                    topic=topic,
                    operation="process",
                    partition=delivery.partition,
                    offset=delivery.offset,
                    consumer_group=consumer_group(self.partner_id),
                    event_id=envelope.id,
                    event_type=envelope.type,
                    event_source=envelope.source,
                    case_id=envelope.businessprocessid,
                )
                with consumer_span(delivery.headers, attributes, topic) as span:
                    yield Delivery(envelope, delivery.data, format(span.get_span_context().trace_id, "032x"))
        except hub_partner.DeliveryRefused as error:
            raise hub_error(error) from error
