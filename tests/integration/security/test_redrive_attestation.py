"""An old partner event that an operator redrives is accepted; nobody else can make it so.

The registry's real ingress route refuses a signed event older than the replay window and
dead-letters it. ``hub.cli.dead_letters.redrive`` queues it in the registry's outbox with the
operator's attestation, the real relay publishes it to Kafka, and the record read back is
processed: the case opens. Without the attestation, under an untrusted key, with an
attestation copied from another event, or redriven too long ago, it is refused again.
"""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from hub.cli import dead_letters as dlq
from hub.local.demo import PORTAL, demo_person, move_report, new_case_id
from hub.runtime.consumer import Outcome
from hub.runtime.outbox import OutboxRelay
from hub.runtime.publisher import KafkaPublisher
from hub.runtime.settings import HubSettings
from hub.security.operator_keys import operator_signing_key
from hub.security.redrive_attestation import HEADER, attest
from hub.security.signing import SigningKey
from tests.fixtures.registry import ingress_processor, mirror_partner_key
from tests.fixtures.signing import Crafted, craft

pytestmark = pytest.mark.asyncio
SEVEN_HOURS_AGO = dt.timedelta(hours=7)  # beyond the default window of six hours


@pytest_asyncio.fixture
async def portal_key(pool: asyncpg.Pool) -> SigningKey:
    return await mirror_partner_key(pool, PORTAL, f"portal-{uuid.uuid4().hex[:8]}")


def _stale_report(key: SigningKey) -> Crafted:
    return craft(
        move_report(demo_person(5)),
        partner_id=PORTAL,
        case_id=new_case_id(),
        key=key,
        time=dt.datetime.now(dt.UTC) - SEVEN_HOURS_AGO,
    )


async def _dead_letter(pool: asyncpg.Pool, event_id: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, error_class, error_message FROM dead_letters WHERE event_id = $1 ORDER BY id",
            event_id,
        )
    return rows[-1]


async def _cases(pool: asyncpg.Pool, case_id: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM cases WHERE case_id = $1", case_id))


async def _redrive_through_kafka(
    pool: asyncpg.Pool, settings: HubSettings, dead_letter_id: int, topic: str, operator: SigningKey | None
) -> ConsumerRecord[bytes, bytes]:
    """``hub dlq redrive`` of one dead letter, the registry's relay, and the record read back."""
    async with pool.acquire() as conn:
        report = await dlq.redrive(
            conn, dlq.Selection(services=("registry",), ids=(dead_letter_id,)), attest_with=operator
        )
    assert [r.id for r in report.redriven] == [dead_letter_id]
    publisher = KafkaPublisher(settings, client_id="redrive-test")
    await publisher.start()
    try:
        relay = OutboxRelay(pool, publisher, schema="registry", batch_size=100, poll_interval_s=0.1)
        while await relay.publish_batch():
            pass
    finally:
        await publisher.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers(), auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records = await consumer.getmany(timeout_ms=10_000)
        while not records:
            records = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    [record] = [r for batch in records.values() for r in batch]
    return record


async def _refused_then_redriven(
    pool: asyncpg.Pool, settings: HubSettings, key: SigningKey, operator: SigningKey | None
) -> tuple[Crafted, ConsumerRecord[bytes, bytes]]:
    processor = ingress_processor(pool, settings)
    topic = f"redrive-test.{uuid.uuid4().hex[:12]}"
    report = _stale_report(key)
    assert await processor.process(report.record(1, topic=topic)) is Outcome.DEAD_LETTERED
    refused = await _dead_letter(pool, report.event_id)
    assert refused["error_class"] == "StaleEvent"
    return report, await _redrive_through_kafka(pool, settings, refused["id"], topic, operator)


async def test_an_old_event_redriven_by_a_trusted_operator_opens_its_case_once(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings
) -> None:
    report, record = await _refused_then_redriven(
        pool, hub_settings, portal_key, operator_signing_key(hub_settings)
    )
    assert [name for name, _ in record.headers].count(HEADER) == 1
    processor = ingress_processor(pool, hub_settings)
    assert await processor.process(record) is Outcome.PROCESSED
    assert await _cases(pool, report.envelope.businessprocessid) == 1
    # The redriven record sent again is the same event: dropped, not processed twice.
    assert await processor.process(record) is Outcome.DUPLICATE


async def test_an_old_event_redriven_without_an_attestation_is_refused_again(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings
) -> None:
    report, record = await _refused_then_redriven(pool, hub_settings, portal_key, None)
    assert HEADER not in [name for name, _ in record.headers]
    assert await ingress_processor(pool, hub_settings).process(record) is Outcome.DEAD_LETTERED
    assert (await _dead_letter(pool, report.event_id))["error_class"] == "StaleEvent"
    assert await _cases(pool, report.envelope.businessprocessid) == 0


async def test_an_attestation_by_a_key_the_services_do_not_trust_is_refused(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings
) -> None:
    stranger = SigningKey.generate("operator-0000000000000000")
    report, record = await _refused_then_redriven(pool, hub_settings, portal_key, stranger)
    assert await ingress_processor(pool, hub_settings).process(record) is Outcome.DEAD_LETTERED
    refused = await _dead_letter(pool, report.event_id)
    assert refused["error_class"] == "UnknownSigningKey"
    assert "not a trusted operator key" in refused["error_message"]
    assert await _cases(pool, report.envelope.businessprocessid) == 0


def _with_attestation(crafted: Crafted, value: str, topic: str) -> ConsumerRecord[bytes, bytes]:
    return crafted.with_header(HEADER, value).record(2, topic=topic)


async def test_an_attestation_copied_from_another_event_is_refused(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings
) -> None:
    operator = operator_signing_key(hub_settings)
    now = dt.datetime.now(dt.UTC)
    redriven = _stale_report(portal_key)
    copied = attest(operator, event_id=redriven.event_id, source=redriven.envelope.source, redriven_at=now)
    other = _stale_report(portal_key)
    record = _with_attestation(other, copied, f"redrive-test.{uuid.uuid4().hex[:12]}")
    assert await ingress_processor(pool, hub_settings).process(record) is Outcome.DEAD_LETTERED
    refused = await _dead_letter(pool, other.event_id)
    assert refused["error_class"] == "BadSignature"
    assert "made for another event" in refused["error_message"]
    assert await _cases(pool, other.envelope.businessprocessid) == 0


async def test_an_attestation_is_itself_subject_to_the_window(
    pool: asyncpg.Pool, portal_key: SigningKey, hub_settings: HubSettings
) -> None:
    operator = operator_signing_key(hub_settings)
    report = _stale_report(portal_key)
    long_ago = dt.datetime.now(dt.UTC) - SEVEN_HOURS_AGO
    old = attest(operator, event_id=report.event_id, source=report.envelope.source, redriven_at=long_ago)
    record = _with_attestation(report, old, f"redrive-test.{uuid.uuid4().hex[:12]}")
    assert await ingress_processor(pool, hub_settings).process(record) is Outcome.DEAD_LETTERED
    assert (await _dead_letter(pool, report.event_id))["error_class"] == "StaleEvent"
