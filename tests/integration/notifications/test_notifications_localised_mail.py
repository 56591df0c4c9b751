"""German notices through the real SMTP sink (the embedded aiosmtpd Maildir) and PostgreSQL read as
a citizen of Lucerne writes: "Umzug" and "3. Dezember 2026", not "relocation" or "2026-12-03"."""

from __future__ import annotations

import asyncio
import uuid
from email.message import EmailMessage

import asyncpg
import pytest

from contracts import Channel
from hub.vault.crypto import MasterKey
from services.notifications.channels import EmailChannel, message_id
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import SmtpEmailSender
from tests.fixtures.infrastructure import Infrastructure
from tests.integration.notifications.conftest import PLACEHOLDERS, accept, history, incoming, request, units

pytestmark = pytest.mark.asyncio

RAW_VALUES = ("relocation", "2026-12-03", "departure-confirmed", "arrival-registered")


async def _mails_of(infrastructure: Infrastructure, case_id: str, count: int) -> list[EmailMessage]:
    """The case's mails in the sink (shared by the session's tests), once ``count`` have arrived."""
    async with asyncio.timeout(10):
        while True:
            mails = [m for m in infrastructure.smtp.messages() if m["X-Hub-Case-Id"] == case_id]
            if len(mails) >= count:
                return mails
            await asyncio.sleep(0.05)


async def test_german_mails_show_the_move_as_umzug_and_dates_in_the_swiss_long_form(
    pool: asyncpg.Pool, vault_master_key: MasterKey, infrastructure: Infrastructure
) -> None:
    case_id = f"eumzug-{uuid.uuid4().hex[:8]}"  # the sink is shared: this test's mails by their case
    placeholders = PLACEHOLDERS | {"case_id": case_id, "move_date": "2026-12-03"}
    report = request(f"{case_id}:received", placeholders=placeholders)
    escalation = request(
        f"{case_id}:escalated",
        template="case.escalated",
        placeholders=placeholders | {"milestone": "departure-confirmed, arrival-registered"},
    )
    for notice in (report, escalation):
        await accept(pool, vault_master_key, incoming(notice, case_id=case_id))
    sender = SmtpEmailSender(infrastructure.smtp.host, infrastructure.smtp.port, connections=1)
    channels = {Channel.EMAIL: EmailChannel(sender, from_address="noreply@hub.stadtluzern.ch")}
    try:
        assert await Dispatcher(units(pool, vault_master_key), channels).dispatch_due() == 2
    finally:
        await sender.aclose()
    assert await history(pool, f"{case_id}:received") == ["created", "sending", "delivered"]

    mails = await _mails_of(infrastructure, case_id, 2)
    by_step = {
        step: next(m for m in mails if str(m["Message-ID"]) == message_id(f"{case_id}:{step}"))
        for step in ("received", "escalated")
    }
    received_mail, escalated_mail = by_step["received"], by_step["escalated"]
    assert received_mail["Content-Language"] == "de"
    assert "per 3. Dezember 2026 erhalten" in received_mail.get_content()
    assert escalated_mail["Subject"] == f"Frist verpasst: Fall {case_id} (Umzug)"
    assert "Fehlende Schritte: Wegzug bestätigt, Zuzug registriert" in escalated_mail.get_content()
    for mail in (received_mail, escalated_mail):
        text = f"{mail['Subject']}\n{mail.get_content()}"
        assert [raw for raw in RAW_VALUES if raw in text] == []
