"""A minimal partner client: how an agency's system talks to the hub over Kafka.

It publishes signed-off contracts to the ingress topic as CloudEvents (binary mode)
with W3C trace context, and reads the partner's own delivery topic. The demo and the
end-to-end tests use it as the partners; the partner SDK will grow from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.trace import SpanKind

from contracts import Action, Contract, Envelope, parse_data
from hub import topics
from hub.telemetry import consumer_span, current_trace_headers, messaging_attributes, tracer

PARTNER_SOURCE_PREFIX = "urn:ch:lu:hub:partner:"


@dataclass(frozen=True)
class Delivery:
    envelope: Envelope
    data: Contract
    trace_id: str


class PartnerClient:
    def __init__(self, bootstrap_servers: str, partner_id: str, *, idempotence: bool = False) -> None:
        self.partner_id = partner_id
        self.source = PARTNER_SOURCE_PREFIX + partner_id
        self._bootstrap = bootstrap_servers
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
        topic: str = topics.INGRESS,
    ) -> Envelope:
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
        with tracer().start_as_current_span(f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes):
            headers = envelope.to_headers() + [(k, v.encode()) for k, v in current_trace_headers().items()]
            await self._producer.send_and_wait(
                topic, data.model_dump_json().encode(), key=business_process_id.encode(), headers=headers
            )
        return envelope

    async def deliveries(self, **consumer_options: Any) -> AsyncIterator[Delivery]:
        """Yield deliveries from this partner's topic, each inside its ``process`` span."""
        topic = topics.delivery_topic(self.partner_id)
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
            data = parse_data(envelope.type, record.value or b"")
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
