"""Many cases at once through a real SMTP relay (aiosmtpd) and PostgreSQL: mails of different
cases overlap at the relay, and each case's mails are accepted in the order they were requested."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from contracts import Channel
from hub.local.embedded.ports import free_port
from hub.vault.crypto import MasterKey
from services.notifications.channels import ChannelAdapter, EmailChannel, InboxChannel, message_id
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import SmtpEmailSender
from tests.integration.notifications.conftest import accept, history, incoming, request, units

pytestmark = pytest.mark.asyncio

CASES = 8
STEPS = ("received", "departure-confirmed", "arrival-registered", "completed")


@dataclass
class Relay:
    """Accepts each message after a short while, noting what was under way at once."""

    accepted: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # case -> Message-IDs
    under_way: int = 0
    most_under_way: int = 0
    under_way_per_case: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    most_under_way_in_one_case: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content)
        case_id = str(mail["X-Hub-Case-Id"])
        self.under_way += 1
        self.under_way_per_case[case_id] += 1
        self.most_under_way = max(self.most_under_way, self.under_way)
        self.most_under_way_in_one_case = max(
            self.most_under_way_in_one_case, self.under_way_per_case[case_id]
        )
        try:
            await asyncio.sleep(0.02)  # a relay's own work: long enough for others to arrive meanwhile
            self.accepted[case_id].append(str(mail["Message-ID"]))
        finally:
            self.under_way -= 1
            self.under_way_per_case[case_id] -= 1
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler, port = Relay(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


async def delivered(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM notifications WHERE status = 'delivered'"))


async def test_cases_are_sent_at_once_and_each_cases_mails_arrive_in_request_order(
    pool: asyncpg.Pool, vault_master_key: MasterKey, relay: tuple[Relay, int]
) -> None:
    seen, port = relay
    for case in range(CASES):  # case after case: a claim holds whole cases, not one step of many
        case_id = f"eumzug-{case}"
        for step in STEPS:
            msg = incoming(request(f"{case_id}:{step}", citizen_id=f"citizen-{case}"), case_id=case_id)
            await accept(pool, vault_master_key, msg)
    sender = SmtpEmailSender("127.0.0.1", port, connections=4)
    channels: dict[Channel, ChannelAdapter] = {
        Channel.EMAIL: EmailChannel(sender, from_address="noreply@hub.stadtluzern.ch"),
        Channel.INBOX: InboxChannel(units(pool, vault_master_key)),
    }
    stop = asyncio.Event()
    running = asyncio.create_task(
        Dispatcher(units(pool, vault_master_key), channels, concurrency=8).run(stop)
    )
    try:
        async with asyncio.timeout(60):
            while await delivered(pool) < CASES * len(STEPS) * 2:  # each mail and its inbox copy
                assert not running.done()
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await sender.aclose()
    assert seen.most_under_way >= 2  # mails of different cases at the relay at once
    assert seen.most_under_way <= 4  # ...no more than the SMTP connections
    assert seen.most_under_way_in_one_case == 1
    assert dict(seen.accepted) == {
        f"eumzug-{case}": [message_id(f"eumzug-{case}:{step}") for step in STEPS] for case in range(CASES)
    }
    assert await history(pool, "eumzug-3:completed") == ["created", "sending", "delivered"]
    async with units(pool, vault_master_key).begin() as uow:
        inbox = await uow.inbox.of("citizen-3")
    assert sorted(m.notification_id for m in inbox) == sorted(f"eumzug-3:{step}:inbox" for step in STEPS)
