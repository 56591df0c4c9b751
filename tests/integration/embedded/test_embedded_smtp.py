"""The embedded SMTP sink with a real smtplib client."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from hub.local.embedded import SmtpSink

pytestmark = pytest.mark.integration


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpSink]:
    sink = SmtpSink(tmp_path / "smtp")
    sink.start()
    yield sink
    sink.stop()


def test_stores_a_message_sent_with_smtplib(smtp: SmtpSink) -> None:
    assert smtp.messages() == []
    message = EmailMessage()
    message["From"] = "hub@stadtluzern.ch"
    message["To"] = "anna.muster@example.ch"
    message["Subject"] = "Umzug bestätigt"
    message.set_content("Grüezi Frau Muster")

    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.send_message(message, to_addrs=["anna.muster@example.ch", "archive@stadtluzern.ch"])

    [received] = smtp.messages()
    assert received["Subject"] == "Umzug bestätigt"
    assert received.get_content().strip() == "Grüezi Frau Muster"
    assert received["X-RcptTo"] == "anna.muster@example.ch, archive@stadtluzern.ch"
    assert list(smtp.maildir.joinpath("new").iterdir())
