"""Channel preference and the inbox on real PostgreSQL; SMS through the HTTP adapter.

Which channel a preference or an opt-out leads to is a rule: ``tests/unit/notifications``.
"""

from __future__ import annotations

import asyncpg
import pytest
from pydantic import SecretStr

from contracts import Channel
from hub.vault.crypto import MasterKey
from services.notifications.channels import ChannelAdapter, EmailChannel, InboxChannel, SmsChannel
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import InMemoryEmailSender
from services.notifications.sms_sender import HttpSmsSender
from tests.fixtures.sms_provider import FakeSmsProvider
from tests.integration.notifications.conftest import accept, history, incoming, request, status_events, units

pytestmark = pytest.mark.asyncio

CITIZEN = "citizen-7"
PHONE = "+41791234567"


def dispatcher(
    pool: asyncpg.Pool, master: MasterKey, email: InMemoryEmailSender, sms: HttpSmsSender | None = None
) -> Dispatcher:
    channels: dict[Channel, ChannelAdapter] = {
        Channel.EMAIL: EmailChannel(email, from_address="noreply@hub.stadtluzern.ch"),
        Channel.INBOX: InboxChannel(units(pool, master)),
    }
    if sms is not None:
        channels[Channel.SMS] = SmsChannel(sms)
    return Dispatcher(units(pool, master), channels)


def http_sms(provider: FakeSmsProvider) -> HttpSmsSender:
    return HttpSmsSender(provider.url, SecretStr(provider.token))


async def test_a_citizen_who_prefers_sms_is_texted_through_the_provider(
    pool: asyncpg.Pool, sms_provider: FakeSmsProvider, vault_master_key: MasterKey
) -> None:
    email = InMemoryEmailSender()
    sms = http_sms(sms_provider)
    async with units(pool, vault_master_key).begin() as uow:
        await uow.preferences.prefer_channel(CITIZEN, Channel.SMS)
    await accept(
        pool,
        vault_master_key,
        incoming(request("eumzug-1:received", citizen_id=CITIZEN, phone=PHONE, inbox=False)),
        sms_available=True,
    )
    try:
        await dispatcher(pool, vault_master_key, email, sms).dispatch_due()
    finally:
        await sms.aclose()
    [text] = sms_provider.messages_to(PHONE)
    assert text.reference == "eumzug-1:received"
    assert "Kriens" in text.text
    assert email.sent == []
    [event] = await status_events(pool, "eumzug-1:received")
    assert (event["channel"], event["status"]) == ("sms", "delivered")


async def test_a_refused_number_is_a_permanent_failure_and_a_provider_outage_is_retried(
    pool: asyncpg.Pool, sms_provider: FakeSmsProvider, vault_master_key: MasterKey
) -> None:
    sms = http_sms(sms_provider)
    sms_provider.answer("+41790000400", 400)
    sms_provider.answer("+41790000500", 500)
    for number in ("+41790000400", "+41790000500"):
        sms_request = request(f"n-{number}", channel=Channel.SMS, recipient=number)
        await accept(pool, vault_master_key, incoming(sms_request), sms_available=True)
    try:
        await dispatcher(pool, vault_master_key, InMemoryEmailSender(), sms).dispatch_due()
    finally:
        await sms.aclose()
    assert (await history(pool, "n-+41790000400"))[-1] == "permanent-failure"
    assert (await history(pool, "n-+41790000500"))[-1] == "temporary-failure"


async def test_every_notice_for_a_known_citizen_is_also_kept_in_the_inbox(
    pool: asyncpg.Pool, vault_master_key: MasterKey
) -> None:
    email = InMemoryEmailSender()
    await accept(pool, vault_master_key, incoming(request("eumzug-1:received", citizen_id=CITIZEN)))
    assert await dispatcher(pool, vault_master_key, email).dispatch_due() == 2
    assert len(email.sent) == 1
    async with units(pool, vault_master_key).begin() as uow:
        [message] = await uow.inbox.of(CITIZEN)
    assert message.notification_id == "eumzug-1:received:inbox"
    assert message.subject == "Ihre Umzugsmeldung eumzug-1 ist eingegangen"
    assert await history(pool, "eumzug-1:received:inbox") == ["created", "sending", "delivered"]
