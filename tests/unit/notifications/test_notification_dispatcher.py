"""The dispatcher and its channels on the in-memory stores and senders: each outcome of an attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from contracts import Channel, MoveReported, NotificationStatusChanged
from contracts.case import CaseDelivery
from hub.runtime.topics import delivery_topic
from services.notifications import handlers
from services.notifications.channels import (
    ChannelAdapter,
    EmailChannel,
    InboxChannel,
    SmsChannel,
    WebhookChannel,
    message_id,
)
from services.notifications.dispatcher import SENDING_LEASE_S, Dispatcher
from services.notifications.domain import Pending
from services.notifications.email_sender import InMemoryEmailSender
from services.notifications.errors import PermanentDeliveryError, TemporaryDeliveryError
from services.notifications.signing import verify
from services.notifications.sms_sender import InMemorySmsSender
from services.notifications.webhook_poster import InMemoryWebhookPoster
from tests.unit.notifications.support import CITIZEN, EMAIL, PHONE, Hub, incoming, request

pytestmark = pytest.mark.asyncio

ID = "eumzug-1:received"
FROM = "noreply@hub.stadtluzern.ch"
PARTNER = "CH/MUN/1059/einwohnerdienste"
SECRET = "s3cr3t-s3cr3t-s3cr3t"
WEBHOOK_URL = "https://kriens.example.ch/hub"


class Senders:
    def __init__(self) -> None:
        self.email = InMemoryEmailSender()
        self.sms = InMemorySmsSender()
        self.webhooks = InMemoryWebhookPoster()


def dispatcher(
    hub: Hub,
    senders: Senders,
    *,
    max_attempts: int = 6,
    channels: Mapping[Channel, ChannelAdapter] | None = None,
) -> Dispatcher:
    chosen = channels or {
        Channel.EMAIL: EmailChannel(senders.email, from_address=FROM),
        Channel.SMS: SmsChannel(senders.sms),
        Channel.INBOX: InboxChannel(hub.units),
        Channel.WEBHOOK: WebhookChannel(hub.units, senders.webhooks),
    }
    return Dispatcher(
        hub.units,
        chosen,
        max_attempts=max_attempts,
        backoff_initial_s=10,
        backoff_max_s=40,
        poll_interval_s=0.01,
    )


async def accept(
    hub: Hub, notification_id: str = ID, *, test_delivery: bool = False, **changes: object
) -> None:
    msg = incoming(request(notification_id, **changes), test_delivery=test_delivery)
    await handlers.accept_notification(msg, hub.unit_of_work(), sms_available=True)


async def test_a_notice_goes_from_created_through_sending_to_delivered() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub)
    assert await dispatcher(hub, senders).dispatch_due() == 1
    assert await hub.history(ID) == ["created", "sending", "delivered"]
    [mail] = senders.email.sent
    assert (mail["To"], mail["From"], mail["Content-Language"]) == (EMAIL, FROM, "de")
    assert mail["Subject"] == "Ihre Umzugsmeldung eumzug-1 ist eingegangen"
    assert (mail["Message-ID"], mail["X-Hub-Case-Id"]) == (message_id(ID), "eumzug-1")
    [event] = hub.emitter.of_type(NotificationStatusChanged)
    assert (event.notification_id, event.channel, event.status.value) == (ID, Channel.EMAIL, "delivered")
    assert event.template == "relocation.received"
    assert hub.emitter.emitted[0].envelope.businessprocessid == "eumzug-1"


async def test_a_temporary_failure_is_retried_after_its_backoff_and_then_delivered() -> None:
    hub, senders = Hub(), Senders()
    senders.email.unreachable = True
    worker = dispatcher(hub, senders)
    await accept(hub)
    await worker.dispatch_due()
    assert hub.statuses(ID) == [("temporary-failure", "SMTP server unreachable: fake outage")]
    assert await worker.dispatch_due() == 0  # not before its backoff
    senders.email.unreachable = False
    hub.clock.advance(10 * 1.5)  # the first backoff, with the most jitter
    assert await worker.dispatch_due() == 1
    assert await hub.history(ID) == ["created", "sending", "temporary-failure", "sending", "delivered"]
    assert len(senders.email.sent) == 1


async def test_the_last_failed_attempt_ends_as_a_technical_failure() -> None:
    hub, senders = Hub(), Senders()
    senders.email.unreachable = True
    worker = dispatcher(hub, senders, max_attempts=2)
    await accept(hub)
    await worker.dispatch_due()
    hub.clock.advance(40)
    await worker.dispatch_due()
    hub.clock.advance(3600)
    assert await worker.dispatch_due() == 0
    status, detail = hub.statuses(ID)[-1]
    assert status == "technical-failure"
    assert detail is not None
    assert detail.startswith("gave up after 2 attempts: SMTP server unreachable")


async def test_a_permanent_failure_is_not_retried() -> None:
    hub, senders = Hub(), Senders()
    senders.email.refused.add(EMAIL)
    worker = dispatcher(hub, senders)
    await accept(hub)
    await worker.dispatch_due()
    hub.clock.advance(3600)
    assert await worker.dispatch_due() == 0
    assert hub.statuses(ID) == [("permanent-failure", "SMTP 550: mailbox unavailable")]


async def test_a_test_delivery_to_a_citizen_sends_nothing_and_is_reported_delivered() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub, citizen_id=CITIZEN, test_delivery=True)
    assert await dispatcher(hub, senders).dispatch_due() == 2  # the email and its inbox copy
    assert senders.email.sent == []
    async with hub.units.begin() as uow:
        assert await uow.inbox.of(CITIZEN) == []
    assert hub.statuses(ID) == [("delivered", "test delivery: nothing sent")]


async def test_a_notice_of_an_erased_person_fails_for_good_and_nothing_is_sent() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub)
    hub.store.erase_case("eumzug-1")
    await dispatcher(hub, senders).dispatch_due()
    assert senders.email.sent == []
    assert hub.statuses(ID) == [("permanent-failure", "erased")]


async def test_a_channel_without_an_adapter_fails_for_good() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub, channel=Channel.SMS, recipient=PHONE)
    worker = dispatcher(
        hub, senders, channels={Channel.EMAIL: EmailChannel(senders.email, from_address=FROM)}
    )
    await worker.dispatch_due()
    assert hub.statuses(ID) == [("permanent-failure", "no sms channel configured")]


async def test_an_sms_goes_to_the_provider_with_the_notice_as_reference() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub, channel=Channel.SMS, recipient=PHONE)
    await dispatcher(hub, senders).dispatch_due()
    [sms] = senders.sms.sent
    assert (sms.to, sms.reference) == (PHONE, ID)
    assert "Kriens" in sms.text
    assert hub.statuses(ID) == [("delivered", None)]


async def test_an_inbox_notice_is_kept_in_the_citizens_inbox() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub, citizen_id=CITIZEN)
    assert await dispatcher(hub, senders).dispatch_due() == 2
    async with hub.units.begin() as uow:
        [message] = await uow.inbox.of(CITIZEN)
    assert (message.notification_id, message.case_id, message.language) == (f"{ID}:inbox", "eumzug-1", "de")
    assert message.subject == "Ihre Umzugsmeldung eumzug-1 ist eingegangen"
    assert hub.statuses(f"{ID}:inbox") == [("delivered", None)]


async def test_the_inbox_channel_treats_an_unreachable_database_as_temporary() -> None:
    hub = Hub()
    hub.store.unavailable = True
    item = Pending(
        ID, "eumzug-1", "inbox", CITIZEN, "relocation.received", "s", "b", "de", False, 1, None, None
    )
    with pytest.raises(TemporaryDeliveryError, match="database unavailable"):
        await InboxChannel(hub.units).deliver(item)


async def forward(hub: Hub, *, test_delivery: bool = False) -> str:
    delivery = CaseDelivery(
        case_type="relocation",
        event_type_delivered=MoveReported.event_type,
        recipient=PARTNER,
        purpose="register the departure",
        legal_basis="RRG LU § 12",
        data={},
    )
    msg = incoming(delivery, topic=delivery_topic(PARTNER), test_delivery=test_delivery)
    await handlers.forward_to_webhook(msg, hub.unit_of_work())
    async with hub.units.begin() as uow:
        [notice] = await uow.notifications.of_case("eumzug-1")
    return notice.notification_id


async def test_a_webhook_delivery_is_posted_signed_and_a_test_delivery_too() -> None:
    hub, senders = Hub(), Senders()
    async with hub.units.begin() as uow:
        await uow.webhooks.put(PARTNER, WEBHOOK_URL, SECRET)
    notification_id = await forward(hub, test_delivery=True)
    await dispatcher(hub, senders).dispatch_due()
    [post] = senders.webhooks.received
    assert post.url == WEBHOOK_URL
    assert post.headers["X-Hub-Delivery"] == notification_id
    assert verify(
        SECRET.encode(),
        post.body,
        timestamp=post.headers["X-Hub-Timestamp"],
        signature_header=post.headers["X-Hub-Signature-256"],
        now=float(post.headers["X-Hub-Timestamp"]),
    )
    assert hub.statuses(notification_id) == [("delivered", None)]


async def test_a_webhook_removed_before_sending_fails_for_good() -> None:
    hub, senders = Hub(), Senders()
    async with hub.units.begin() as uow:
        await uow.webhooks.put(PARTNER, WEBHOOK_URL, SECRET)
    notification_id = await forward(hub)
    hub.store.state.webhooks.clear()
    await dispatcher(hub, senders).dispatch_due()
    assert senders.webhooks.received == []
    assert hub.statuses(notification_id) == [("permanent-failure", f"no webhook configured for {PARTNER}")]


async def test_one_cases_notices_are_sent_in_the_order_they_were_requested() -> None:
    hub, senders = Hub(), Senders()
    steps = ["eumzug-1:received", "eumzug-1:departure-confirmed", "eumzug-1:completed"]
    for notification_id in steps:
        await accept(hub, notification_id)
        hub.clock.advance(0.001)
    await dispatcher(hub, senders).dispatch_due()
    assert [mail["Message-ID"] for mail in senders.email.sent] == [message_id(step) for step in steps]


async def test_a_notice_left_in_sending_is_sent_again_once_its_lease_is_over() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub)
    async with hub.units.begin() as uow:
        await uow.notifications.claim_due(10)  # ...and that dispatcher died
    worker = dispatcher(hub, senders)
    assert await worker.requeue_stale() == 0
    assert await worker.dispatch_due() == 0
    hub.clock.advance(SENDING_LEASE_S + 1)
    assert await worker.requeue_stale() == 1
    assert await worker.dispatch_due() == 1
    assert len(senders.email.sent) == 1
    assert (await hub.history(ID))[-1] == "delivered"


async def test_the_running_dispatcher_sends_what_is_queued_and_waits_out_a_database_outage() -> None:
    hub, senders = Hub(), Senders()
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher(hub, senders).run(stop))
    try:
        await asyncio.sleep(0.02)
        hub.store.unavailable = True  # the dispatcher logs and goes on polling
        await asyncio.sleep(0.05)
        assert not running.done()
        hub.store.unavailable = False
        await accept(hub)
        async with asyncio.timeout(5):
            while not senders.email.sent:
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
    assert (await hub.history(ID))[-1] == "delivered"


class OutageWhileSending:
    """A channel that delivers, and the database goes away until shortly after."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def deliver(self, item: Pending) -> None:
        self._hub.store.unavailable = True
        asyncio.get_running_loop().call_later(0.3, setattr, self._hub.store, "unavailable", False)


async def test_an_outcome_is_recorded_once_the_database_is_back() -> None:
    hub, senders = Hub(), Senders()
    await accept(hub)
    await dispatcher(hub, senders, channels={Channel.EMAIL: OutageWhileSending(hub)}).dispatch_due()
    assert hub.statuses(ID) == [("delivered", None)]


async def test_an_email_message_carries_the_notice() -> None:
    item = Pending(
        ID, "eumzug-1", "email", EMAIL, "relocation.received", "Betreff", "Text", None, False, 1, None, None
    )
    sender = InMemoryEmailSender()
    await EmailChannel(sender, from_address=FROM).deliver(item)
    [mail] = sender.sent
    assert (mail["To"], mail["Subject"], mail.get_content().strip()) == (EMAIL, "Betreff", "Text")
    assert mail["Content-Language"] == ""
    with pytest.raises(PermanentDeliveryError):
        await EmailChannel(InMemoryEmailSender(refused={EMAIL}), from_address=FROM).deliver(item)


async def test_each_recorded_outcome_is_counted_once_by_channel_and_status() -> None:
    """What hub_notifications_total counts: outcomes once they are recorded, not attempts."""
    hub, senders = Hub(), Senders()
    senders.email.refused.add(EMAIL)
    outcomes: list[tuple[str, str]] = []
    await accept(hub, "eumzug-1:refused")
    await accept(hub, "eumzug-2:test", test_delivery=True)
    counting = Dispatcher(
        hub.units,
        {Channel.EMAIL: EmailChannel(senders.email, from_address=FROM)},
        on_outcome=lambda channel, status: outcomes.append((channel, status.value)),
    )
    assert await counting.dispatch_due() == 2
    assert sorted(outcomes) == [("email", "delivered"), ("email", "permanent-failure")]
