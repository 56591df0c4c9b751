"""The handlers on the in-memory stores: what a request or a partner delivery queues, and what is emitted."""

from __future__ import annotations

import json

import pytest

from contracts import Channel, MoveReported
from contracts.case import CaseDelivery
from hub.errors import PermanentError
from hub.runtime.topics import NOTIFICATION_STATUS, delivery_topic
from services.notifications import handlers
from services.notifications.domain import OPTED_OUT, Notice
from tests.unit.notifications.support import CITIZEN, EMAIL, PHONE, PLACEHOLDERS, Hub, incoming, request

pytestmark = pytest.mark.asyncio

ID = "eumzug-1:received"
PARTNER = "CH/MUN/1059/einwohnerdienste"
DELIVERY = CaseDelivery(
    case_type="relocation",
    event_type_delivered=MoveReported.event_type,
    recipient=PARTNER,
    purpose="register the departure",
    legal_basis="RRG LU § 12",
    data={"move_date": "2026-12-01"},
)


async def notices(hub: Hub, case_id: str = "eumzug-1") -> list[Notice]:
    async with hub.units.begin() as uow:
        return await uow.notifications.of_case(case_id)


async def accept(
    hub: Hub, *, sms_available: bool = False, test_delivery: bool = False, **changes: object
) -> None:
    msg = incoming(request(**changes), test_delivery=test_delivery)  # type: ignore[arg-type]
    await handlers.accept_notification(msg, hub.unit_of_work(), sms_available=sms_available)


async def prefer(hub: Hub, *, channel: Channel | None = None, opted_out: bool | None = None) -> None:
    async with hub.units.begin() as uow:
        if channel is not None:
            await uow.preferences.prefer_channel(CITIZEN, channel)
        if opted_out is not None:
            await uow.preferences.set_opted_out(CITIZEN, opted_out)


# accept_notification


async def test_a_request_is_rendered_and_queued_by_email_without_an_event() -> None:
    hub = Hub()
    await accept(hub)
    [notice] = await notices(hub)
    assert (notice.notification_id, notice.channel, notice.recipient) == (ID, "email", EMAIL)
    assert notice.subject == "Ihre Umzugsmeldung eumzug-1 ist eingegangen"
    assert "Kriens" in notice.body
    assert (notice.status.value, notice.test_delivery) == ("created", False)
    assert await hub.history(ID) == ["created"]
    assert hub.emitter.emitted == []  # status events come with sending


async def test_an_unknown_template_is_refused_for_good_and_nothing_is_queued() -> None:
    hub = Hub()
    with pytest.raises(PermanentError, match="cannot render"):
        await accept(hub, template="no-such-template")
    assert await notices(hub) == []


async def test_a_missing_placeholder_is_refused_for_good() -> None:
    hub = Hub()
    placeholders = {k: v for k, v in PLACEHOLDERS.items() if k != "first_name"}
    with pytest.raises(PermanentError, match="first_name"):
        await accept(hub, placeholders=placeholders)
    assert await notices(hub) == []


async def test_a_repeated_request_queues_nothing_new_and_reports_nothing_twice() -> None:
    hub = Hub()
    await prefer(hub, opted_out=True)
    for _ in range(2):
        await accept(hub, citizen_id=CITIZEN, mandatory=False)
    assert len(await notices(hub)) == 1
    assert await hub.history(ID) == ["created", "permanent-failure"]
    assert len(hub.statuses(ID)) == 1


async def test_an_opted_out_citizen_gets_no_notice_that_is_not_mandatory() -> None:
    hub = Hub()
    await prefer(hub, opted_out=True)
    await accept(hub, citizen_id=CITIZEN, mandatory=False)
    [notice] = await notices(hub)  # recorded, without an inbox copy
    assert (notice.status.value, notice.last_error) == ("permanent-failure", OPTED_OUT)
    assert hub.statuses(ID) == [("permanent-failure", "opted out")]
    [emitted] = hub.emitter.on_topic(NOTIFICATION_STATUS)
    assert emitted.key == "eumzug-1"  # the case's key: its events keep their order


async def test_an_opted_out_citizen_still_gets_mandatory_notices() -> None:
    hub = Hub()
    await prefer(hub, opted_out=True)
    await accept(hub, citizen_id=CITIZEN, mandatory=True, inbox=False)
    [notice] = await notices(hub)
    assert (notice.channel, notice.status.value) == ("email", "created")
    assert hub.emitter.emitted == []


async def test_opting_in_again_restores_every_notice() -> None:
    hub = Hub()
    await prefer(hub, opted_out=True)
    await prefer(hub, opted_out=False)
    await accept(hub, citizen_id=CITIZEN, mandatory=False, inbox=False)
    [notice] = await notices(hub)
    assert notice.status.value == "created"


async def test_a_citizen_who_prefers_sms_is_queued_an_sms_with_the_sms_text() -> None:
    hub = Hub()
    await prefer(hub, channel=Channel.SMS)
    await accept(hub, citizen_id=CITIZEN, phone=PHONE, inbox=False, sms_available=True)
    [notice] = await notices(hub)
    assert (notice.channel, notice.recipient) == ("sms", PHONE)
    assert "Kriens" in notice.body


@pytest.mark.parametrize(("phone", "sms_available"), [(None, True), (PHONE, False)])
async def test_an_sms_preference_falls_back_to_email_without_a_phone_or_a_provider(
    phone: str | None, sms_available: bool
) -> None:
    hub = Hub()
    await prefer(hub, channel=Channel.SMS)
    await accept(hub, citizen_id=CITIZEN, phone=phone, inbox=False, sms_available=sms_available)
    [notice] = await notices(hub)
    assert (notice.channel, notice.recipient) == ("email", EMAIL)


async def test_every_notice_for_a_known_citizen_gets_an_inbox_copy() -> None:
    hub = Hub()
    await accept(hub, citizen_id=CITIZEN)
    email, copy = await notices(hub)
    assert (email.notification_id, email.channel) == (ID, "email")
    assert (copy.notification_id, copy.channel, copy.recipient) == (f"{ID}:inbox", "inbox", CITIZEN)
    assert copy.subject == email.subject
    assert copy.citizen_id == CITIZEN


async def test_a_citizen_who_prefers_the_inbox_gets_no_email() -> None:
    hub = Hub()
    await prefer(hub, channel=Channel.INBOX)
    await accept(hub, citizen_id=CITIZEN)
    [notice] = await notices(hub)
    assert (notice.notification_id, notice.channel, notice.recipient) == (ID, "inbox", CITIZEN)


async def test_no_inbox_copy_is_kept_when_the_request_forbids_it() -> None:
    hub = Hub()
    await accept(hub, citizen_id=CITIZEN, inbox=False)
    assert [n.channel for n in await notices(hub)] == ["email"]


async def test_a_notice_asked_for_on_the_webhook_channel_is_refused_and_reported() -> None:
    hub = Hub()
    await accept(hub, channel=Channel.WEBHOOK)
    [notice] = await notices(hub)
    assert notice.status.value == "permanent-failure"
    assert hub.statuses(ID) == [("permanent-failure", "webhooks carry partner deliveries, not notices")]


async def test_a_test_delivery_is_queued_flagged_as_such() -> None:
    hub = Hub()
    await accept(hub, test_delivery=True)
    [notice] = await notices(hub)
    assert notice.test_delivery


# forward_to_webhook


async def add_webhook(hub: Hub) -> None:
    async with hub.units.begin() as uow:
        await uow.webhooks.put(PARTNER, "https://kriens.example.ch/hub", "s3cr3t-s3cr3t-s3cr3t")


async def test_a_delivery_on_a_partners_topic_is_queued_for_its_webhook_as_a_cloudevent() -> None:
    hub = Hub()
    await add_webhook(hub)
    msg = incoming(DELIVERY, topic=delivery_topic(PARTNER), test_delivery=True)
    await handlers.forward_to_webhook(msg, hub.unit_of_work())
    [notice] = await notices(hub)
    assert notice.notification_id.startswith("webhook-")
    assert (notice.channel, notice.recipient, notice.template) == (
        "webhook",
        PARTNER,
        CaseDelivery.event_type,
    )
    assert notice.subject == f"{CaseDelivery.event_type} {msg.envelope.id}"
    event = json.loads(notice.body)
    assert (event["id"], event["businessprocessid"], event["testdelivery"]) == (
        msg.envelope.id,
        "eumzug-1",
        True,
    )
    assert event["data"] == DELIVERY.model_dump(mode="json")
    assert notice.test_delivery
    assert hub.emitter.emitted == []


async def test_the_same_delivery_read_again_is_queued_once() -> None:
    hub = Hub()
    await add_webhook(hub)
    msg = incoming(DELIVERY, topic=delivery_topic(PARTNER))
    for _ in range(2):
        await handlers.forward_to_webhook(msg, hub.unit_of_work())
    assert len(await notices(hub)) == 1


async def test_a_topic_without_a_webhook_queues_nothing() -> None:
    hub = Hub()
    await add_webhook(hub)
    msg = incoming(DELIVERY, topic=delivery_topic("CH/MUN/1061/einwohnerdienste"))
    await handlers.forward_to_webhook(msg, hub.unit_of_work())
    assert await notices(hub) == []
