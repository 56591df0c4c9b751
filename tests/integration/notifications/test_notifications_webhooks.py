"""Partner webhooks: deliveries read from the partner's topic, POSTed signed, with a status lifecycle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import Channel, MoveReported
from contracts.case import CaseDelivery
from hub.local.partner_client import PartnerClient
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from hub.vault.crypto import MasterKey
from services.notifications import handlers
from services.notifications.adapters.postgres import unit_of_work_factory
from services.notifications.channels import WebhookChannel
from services.notifications.dispatcher import Dispatcher
from services.notifications.webhook_consumer import WebhookConsumer
from services.notifications.webhook_poster import HttpWebhookPoster
from tests.integration.notifications.conftest import (
    SOURCE,
    handle,
    history,
    incoming,
    status_events,
    units,
)
from tests.integration.notifications.webhook_receiver import SECRET, WebhookReceiver

pytestmark = pytest.mark.asyncio

PARTNER = "CH/MUN/1059/einwohnerdienste"
DELIVERY = CaseDelivery(
    case_type="relocation",
    event_type_delivered=MoveReported.event_type,
    recipient=PARTNER,
    purpose="register the departure",
    legal_basis="RRG LU § 12",
    data={"move_date": "2026-12-01"},
)


@pytest_asyncio.fixture
async def poster() -> AsyncIterator[HttpWebhookPoster]:
    poster = HttpWebhookPoster(timeout_s=5)
    yield poster
    await poster.aclose()


def dispatcher(pool: asyncpg.Pool, master: MasterKey, poster: HttpWebhookPoster) -> Dispatcher:
    channels = {Channel.WEBHOOK: WebhookChannel(units(pool, master), poster)}
    return Dispatcher(units(pool, master), channels, backoff_initial_s=0.05, backoff_max_s=0.1)


async def add_webhook(pool: asyncpg.Pool, master: MasterKey, url: str) -> None:
    async with units(pool, master).begin() as uow:
        await uow.webhooks.put(PARTNER, url, SECRET.decode())


async def forward(
    pool: asyncpg.Pool,
    master: MasterKey,
    *,
    topic: str = delivery_topic(PARTNER),
    test_delivery: bool = False,
) -> str:
    msg = incoming(DELIVERY, topic=topic, test_delivery=test_delivery)
    await handle(pool, master, handlers.forward_to_webhook, msg)
    async with pool.acquire() as conn:
        found: str | None = await conn.fetchval(
            "SELECT notification_id FROM notifications WHERE channel = 'webhook'"
        )
    return found or ""


async def test_a_delivery_is_posted_as_a_signed_cloudevent_and_reported_delivered(
    pool: asyncpg.Pool,
    poster: HttpWebhookPoster,
    webhook_receiver: WebhookReceiver,
    vault_master_key: MasterKey,
) -> None:
    await add_webhook(pool, vault_master_key, webhook_receiver.url())
    notification_id = await forward(pool, vault_master_key)
    assert await dispatcher(pool, vault_master_key, poster).dispatch_due() == 1
    [received] = webhook_receiver.received
    event = received.event()
    assert event["type"] == CaseDelivery.event_type
    assert event["businessprocessid"] == "eumzug-1"
    assert event["data"] == DELIVERY.model_dump(mode="json")
    assert received.headers["X-Hub-Delivery"] == notification_id
    assert await history(pool, notification_id) == ["created", "sending", "delivered"]
    [status] = await status_events(pool, notification_id)
    assert (status["channel"], status["template"]) == ("webhook", CaseDelivery.event_type)


async def test_a_failing_webhook_is_retried_with_backoff_until_it_answers(
    pool: asyncpg.Pool,
    poster: HttpWebhookPoster,
    webhook_receiver: WebhookReceiver,
    vault_master_key: MasterKey,
) -> None:
    await add_webhook(pool, vault_master_key, webhook_receiver.url("/flaky"))
    webhook_receiver.answer("/flaky", 503)
    notification_id = await forward(pool, vault_master_key)
    worker = dispatcher(pool, vault_master_key, poster)
    await worker.dispatch_due()
    webhook_receiver.answers.clear()
    async with asyncio.timeout(5):
        while not await worker.dispatch_due():
            await asyncio.sleep(0.05)
    assert await history(pool, notification_id) == [
        "created",
        "sending",
        "temporary-failure",
        "sending",
        "delivered",
    ]
    assert len(webhook_receiver.received) == 1


async def test_a_test_delivery_reaches_the_webhook_flagged_as_such(
    pool: asyncpg.Pool,
    poster: HttpWebhookPoster,
    webhook_receiver: WebhookReceiver,
    vault_master_key: MasterKey,
) -> None:
    await add_webhook(pool, vault_master_key, webhook_receiver.url())
    await forward(pool, vault_master_key, test_delivery=True)
    await dispatcher(pool, vault_master_key, poster).dispatch_due()
    [received] = webhook_receiver.received
    assert received.event()["testdelivery"] is True  # the partner sees it as on Kafka


async def test_a_topic_without_a_webhook_queues_nothing(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    assert await forward(pool, vault_master_key, topic=delivery_topic("CH/MUN/1061/einwohnerdienste")) == ""


async def test_deliveries_on_the_partners_kafka_topic_reach_its_webhook(
    pool: asyncpg.Pool,
    poster: HttpWebhookPoster,
    webhook_receiver: WebhookReceiver,
    hub_settings: HubSettings,
    vault_master_key: MasterKey,
) -> None:
    """The whole path: Kafka topic -> webhook consumer -> queued -> dispatcher -> signed POST."""
    stop = asyncio.Event()
    consumer = WebhookConsumer(
        pool,
        hub_settings,
        units=units(pool, vault_master_key),
        unit_of_work=unit_of_work_factory(vault_master_key),
        source=SOURCE,
        refresh_interval_s=0.2,
    )
    worker = dispatcher(pool, vault_master_key, poster)
    tasks = [asyncio.create_task(consumer.run(stop)), asyncio.create_task(worker.run(stop))]
    registry = PartnerClient(hub_settings.bootstrap_servers(), "CH/CAN/LU/hub-registry-test")
    await registry.start()
    try:
        # While running: picked up at the next refresh.
        await add_webhook(pool, vault_master_key, webhook_receiver.url())
        envelope = await registry.publish(
            DELIVERY, business_process_id="eumzug-77", topic=delivery_topic(PARTNER)
        )
        deadline = time.monotonic() + 60
        while not _posted(webhook_receiver, envelope.id) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await registry.stop()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    # The session's broker is shared: earlier end-to-end runs also delivered to this
    # partner's topic, so look for this event and check it was posted exactly once.
    [received] = _posted(webhook_receiver, envelope.id)
    assert received.event()["businessprocessid"] == "eumzug-77"
    assert received.headers["traceparent"].split("-")[1] != "0" * 32  # the case's trace continues


def _posted(receiver: WebhookReceiver, event_id: str) -> list[Any]:
    return [r for r in receiver.received if r.event()["id"] == event_id]
