"""One suite, two adapters: the in-memory email sender and SMTP against the real sink."""

from __future__ import annotations

import abc
import uuid
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from hub.local.embedded.ports import free_port
from services.notifications.email_sender import (
    EmailSender,
    InMemoryEmailSender,
    SmtpEmailSender,
    TemporaryDeliveryError,
)
from tests.fixtures.infrastructure import Infrastructure

pytestmark = pytest.mark.asyncio


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "noreply@hub.stadtluzern.ch"
    message["To"] = to
    message["Subject"] = "Ihre Umzugsmeldung ist eingegangen"
    message["Message-ID"] = f"<{uuid.uuid4()}@hub.stadtluzern.ch>"
    message.set_content("Grüezi, Umlaute bleiben erhalten: äöü")
    return message


class EmailSenderContract(abc.ABC):
    """The shared suite; each Test* subclass supplies one adapter (the fake or the real one)."""

    @abc.abstractmethod
    def delivered_to(self, recipient: str) -> list[EmailMessage]: ...

    @abc.abstractmethod
    def unreachable_sender(self) -> EmailSender: ...

    async def test_a_sent_message_arrives_intact(self, sender: EmailSender) -> None:
        recipient = f"{uuid.uuid4().hex[:8]}@example.ch"
        await sender.send(_message(recipient))
        [received] = self.delivered_to(recipient)
        assert received["Subject"] == "Ihre Umzugsmeldung ist eingegangen"
        assert "äöü" in received.get_content()

    async def test_an_unreachable_server_is_a_temporary_failure(self) -> None:
        with pytest.raises(TemporaryDeliveryError):
            await self.unreachable_sender().send(_message("a@example.ch"))


class TestInMemoryEmailSender(EmailSenderContract):
    @pytest.fixture
    def sender(self) -> EmailSender:
        self.fake = InMemoryEmailSender()
        return self.fake

    def delivered_to(self, recipient: str) -> list[EmailMessage]:
        return [m for m in self.fake.sent if m["To"] == recipient]

    def unreachable_sender(self) -> EmailSender:
        return InMemoryEmailSender(unreachable=True)


class TestSmtpEmailSender(EmailSenderContract):
    @pytest.fixture
    def sender(self, infrastructure: Infrastructure) -> Iterator[EmailSender]:
        self.sink = infrastructure.smtp
        sender = SmtpEmailSender(self.sink.host, self.sink.port)
        yield sender
        sender.close()  # the connection it keeps open for the next message

    def delivered_to(self, recipient: str) -> list[EmailMessage]:
        return [m for m in self.sink.messages() if m["To"] == recipient]

    def unreachable_sender(self) -> EmailSender:
        return SmtpEmailSender("127.0.0.1", free_port(), timeout_s=2)
