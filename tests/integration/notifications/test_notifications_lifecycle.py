"""The status lifecycle on real PostgreSQL: handler in a transaction, then the dispatcher with fakes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import asyncpg
import pytest

from contracts import Channel
from hub.runtime.telemetry import tracer
from hub.vault.crypto import MasterKey
from services.notifications.channels import ChannelAdapter, EmailChannel, InboxChannel
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import InMemoryEmailSender
from tests.integration.notifications.conftest import accept, history, incoming, request, status_events, units

pytestmark = pytest.mark.asyncio

ID = "eumzug-1:received"


def dispatcher(
    pool: asyncpg.Pool,
    master: MasterKey,
    email: InMemoryEmailSender,
    *,
    max_attempts: int = 6,
    backoff_s: float = 0.05,
) -> Dispatcher:
    channels: Mapping[Channel, ChannelAdapter] = {
        Channel.EMAIL: EmailChannel(email, from_address="noreply@hub.stadtluzern.ch"),
        Channel.INBOX: InboxChannel(units(pool, master)),
    }
    return Dispatcher(
        units(pool, master),
        channels,
        max_attempts=max_attempts,
        backoff_initial_s=backoff_s,
        backoff_max_s=backoff_s * 4,
    )


async def until_due(pool: asyncpg.Pool, notification_id: str) -> None:
    """Wait out the backoff the dispatcher chose for a temporary failure."""
    async with asyncio.timeout(5):
        while True:
            async with pool.acquire() as conn:
                due = await conn.fetchval(
                    "SELECT next_attempt_at <= now() FROM notifications WHERE notification_id = $1",
                    notification_id,
                )
            if due:
                return
            await asyncio.sleep(0.02)


async def test_a_notification_goes_from_created_through_sending_to_delivered(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    email = InMemoryEmailSender()
    with tracer().start_as_current_span("process hub.notification.requests") as span:
        await accept(pool, vault_master_key, incoming(request(ID)))
        request_trace = format(span.get_span_context().trace_id, "032x")
    assert await history(pool, ID) == ["created"]
    assert await dispatcher(pool, vault_master_key, email).dispatch_due() == 1
    assert await history(pool, ID) == ["created", "sending", "delivered"]
    [mail] = email.sent
    assert mail["To"] == "anna.muster@example.ch"
    assert mail["Subject"] == "Ihre Umzugsmeldung eumzug-1 ist eingegangen"
    assert mail["Content-Language"] == "de"
    [event] = await status_events(pool, ID)
    assert (event["status"], event["channel"], event["template"]) == (
        "delivered",
        "email",
        "relocation.received",
    )
    assert event["traceparent"].split("-")[1] == request_trace  # the status continues the request's trace


async def test_a_temporary_failure_is_retried_with_backoff_and_then_delivered(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    email = InMemoryEmailSender(unreachable=True)
    worker = dispatcher(pool, vault_master_key, email, backoff_s=0.5)
    await accept(pool, vault_master_key, incoming(request(ID)))
    await worker.dispatch_due()
    assert await history(pool, ID) == ["created", "sending", "temporary-failure"]
    assert await worker.dispatch_due() == 0  # not before its backoff has passed
    email.unreachable = False
    await until_due(pool, ID)
    assert await worker.dispatch_due() == 1
    assert await history(pool, ID) == ["created", "sending", "temporary-failure", "sending", "delivered"]
    assert len(email.sent) == 1
    assert [e["status"] for e in await status_events(pool, ID)] == ["temporary-failure", "delivered"]


async def test_a_permanent_failure_is_not_retried(pool: asyncpg.Pool, vault_master_key: MasterKey) -> None:
    email = InMemoryEmailSender(refused={"anna.muster@example.ch"})
    worker = dispatcher(pool, vault_master_key, email)
    await accept(pool, vault_master_key, incoming(request(ID)))
    await worker.dispatch_due()
    await asyncio.sleep(0.1)
    assert await worker.dispatch_due() == 0
    assert await history(pool, ID) == ["created", "sending", "permanent-failure"]
    [event] = await status_events(pool, ID)
    assert event["detail"] == "SMTP 550: mailbox unavailable"


async def test_the_last_failed_attempt_ends_as_a_technical_failure(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    worker = dispatcher(pool, vault_master_key, InMemoryEmailSender(unreachable=True), max_attempts=3)
    await accept(pool, vault_master_key, incoming(request(ID)))
    for _ in range(3):
        await until_due(pool, ID)
        assert await worker.dispatch_due() == 1
    assert await history(pool, ID) == [
        "created",
        *["sending", "temporary-failure"] * 2,
        "sending",
        "technical-failure",
    ]
    final = (await status_events(pool, ID))[-1]
    assert final["detail"].startswith("gave up after 3 attempts")
    await asyncio.sleep(0.3)
    assert await worker.dispatch_due() == 0


async def test_a_notice_left_in_sending_by_a_dead_dispatcher_is_sent_after_its_lease(
    pool: asyncpg.Pool,
    vault_master_key: MasterKey,
) -> None:
    """A dispatcher killed between claiming and recording leaves the row in 'sending'; a
    running dispatcher takes it up again once the lease has expired, not only at start."""
    await accept(pool, vault_master_key, incoming(request(ID)))
    async with units(pool, vault_master_key).begin() as uow:
        [claimed] = await uow.notifications.claim_due(10)  # ...and then the process died
    assert claimed.notification_id == ID
    email = InMemoryEmailSender()
    running = dispatcher(pool, vault_master_key, email)
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    await asyncio.sleep(0.5)
    assert email.sent == []  # a fresh lease is respected: the first dispatcher may still be sending
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE notifications SET updated_at = now() - interval '1 hour' WHERE notification_id = $1", ID
        )
    async with asyncio.timeout(30):
        while not email.sent:
            await asyncio.sleep(0.05)
    stop.set()
    await task
    assert len(email.sent) == 1
    assert (await history(pool, ID))[-1] == "delivered"


async def test_one_cases_notices_are_sent_in_the_order_they_were_requested(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    # Ids chosen so that their alphabetical order is not the request order.
    steps = [
        "eumzug-1:received",
        "eumzug-1:departure-confirmed",
        "eumzug-1:arrival-registered",
        "eumzug-1:completed",
    ]
    for notification_id in steps:
        await accept(pool, vault_master_key, incoming(request(notification_id)))
    await accept(pool, vault_master_key, incoming(request("eumzug-2:received"), case_id="eumzug-2"))
    email = InMemoryEmailSender()
    assert await dispatcher(pool, vault_master_key, email).dispatch_due() == 5
    sent = [str(mail["Message-ID"]) for mail in email.sent if mail["X-Hub-Case-Id"] == "eumzug-1"]
    assert [m.split("@")[0].removeprefix("<") for m in sent] == [s.replace(":", ".") for s in steps]
