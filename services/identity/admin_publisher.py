"""Publishing operator commands to ``hub.admin`` as an operator's system would.

The CLI does not write identity's or the registry's tables for partner and subscription
changes: the command travels as a CloudEvent, so the change is validated, deduplicated
and announced by the service exactly as a command from any other operator system. Each
command is signed with the operator's key (``hub.security.operator_keys``): the services apply
only commands a trusted operator signed.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind

from contracts import Contract, Envelope
from hub.errors import BrokerUnavailable
from hub.runtime import topics
from hub.runtime.kafka import client_config
from hub.runtime.settings import HubSettings
from hub.runtime.telemetry import current_trace_headers, messaging_attributes, tracer
from hub.security.operator_keys import ADMIN_CLI_SOURCE, operator_signing_key
from hub.security.signing import SigningKey
from services.identity.partner_events import business_process_id


async def publish_admin_command(
    settings: HubSettings, command: Contract, *, partner_id: str, signing_key: SigningKey | None = None
) -> Envelope:
    """Send ``command`` about ``partner_id`` and wait until the broker acknowledged it."""
    [envelope] = await publish_admin_commands(settings, [(command, partner_id)], signing_key=signing_key)
    return envelope


async def publish_test_opening(
    settings: HubSettings, opening: Contract, *, case_id: str, signing_key: SigningKey | None = None
) -> Envelope:
    """Send a case type's opening event as the operator's test case ``case_id``
    (``services/registry/test_cases.py``): flagged test delivery, keyed by the case like every
    event of a case, signed like every admin command."""
    key = signing_key if signing_key is not None else operator_signing_key(settings)
    try:
        return await _publish_one(
            settings, opening, key, case_id=case_id, kafka_key=case_id, test_delivery=True
        )
    except KafkaError as error:
        raise BrokerUnavailable(f"cannot publish to {topics.ADMIN}: {error}") from error


async def publish_admin_commands(
    settings: HubSettings,
    commands: Sequence[tuple[Contract, str]],
    *,
    signing_key: SigningKey | None = None,
) -> list[Envelope]:
    """Send several (command, partner id) pairs in order over one connection.

    Signed with ``signing_key``, by default the operator key of ``settings``; it is loaded
    before connecting, so a missing key file fails before anything is sent.
    """
    key = signing_key if signing_key is not None else operator_signing_key(settings)
    try:
        return await _publish(settings, commands, key)
    except KafkaError as error:
        # One line for the operator instead of the client's traceback.
        raise BrokerUnavailable(f"cannot publish to {topics.ADMIN}: {error}") from error


def _producer(settings: HubSettings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_config(settings, client_id="hub-cli"),
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
    )


async def _publish(
    settings: HubSettings, commands: Sequence[tuple[Contract, str]], key: SigningKey
) -> list[Envelope]:
    producer = _producer(settings)
    await producer.start()
    try:
        admin = topics.on_cluster(topics.ADMIN, settings.topic_prefix)
        return [
            # Keyed by partner: a partner's commands stay in order on one partition.
            await _send(
                producer, admin, command, key, case_id=business_process_id(partner_id), kafka_key=partner_id
            )
            for command, partner_id in commands
        ]
    finally:
        await producer.stop()


async def _publish_one(
    settings: HubSettings,
    command: Contract,
    key: SigningKey,
    *,
    case_id: str,
    kafka_key: str,
    test_delivery: bool,
) -> Envelope:
    producer = _producer(settings)
    await producer.start()
    try:
        admin = topics.on_cluster(topics.ADMIN, settings.topic_prefix)
        return await _send(
            producer, admin, command, key, case_id=case_id, kafka_key=kafka_key, test_delivery=test_delivery
        )
    finally:
        await producer.stop()


async def _send(
    producer: AIOKafkaProducer,
    admin: str,
    command: Contract,
    key: SigningKey,
    *,
    case_id: str,
    kafka_key: str,
    test_delivery: bool = False,
) -> Envelope:
    value = command.model_dump_json().encode()
    # The signature covers these exact bytes and every ce_* header (the test flag too), trace
    # headers aside.
    unsigned = Envelope.new(
        command, source=ADMIN_CLI_SOURCE, business_process_id=case_id, test_delivery=test_delivery
    )
    signed_headers = key.sign_headers(unsigned.to_headers(), value)
    envelope = Envelope.from_headers(signed_headers)
    attributes = messaging_attributes(
        topic=topics.ADMIN,
        operation="send",
        key=kafka_key,
        event_id=envelope.id,
        event_type=envelope.type,
        event_source=envelope.source,
        case_id=envelope.businessprocessid,
    )
    with tracer().start_as_current_span(
        f"send {topics.ADMIN}", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        headers = signed_headers + [(k, v.encode()) for k, v in current_trace_headers().items()]
        await producer.send_and_wait(admin, value, key=kafka_key.encode(), headers=headers)
    return envelope
