"""Sending email: the SMTP adapter and its in-memory fake share one interface and one test suite."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from services.notifications.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError

# The error classes lived here first; callers and the contract suite still import them from here.
__all__ = [
    "DeliveryError",
    "EmailSender",
    "InMemoryEmailSender",
    "PermanentDeliveryError",
    "SmtpEmailSender",
    "TemporaryDeliveryError",
]


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpEmailSender:
    def __init__(self, host: str, port: int, *, timeout_s: float = 10.0) -> None:
        self._host, self._port, self._timeout_s = host, port, timeout_s

    async def send(self, message: EmailMessage) -> None:
        # smtplib is blocking and battle-tested; a thread keeps the event loop free.
        await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
                smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            kind = PermanentDeliveryError if error.smtp_code >= 500 else TemporaryDeliveryError
            raise kind(f"SMTP {error.smtp_code}: {error.smtp_error!r}") from error
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            kind = PermanentDeliveryError if all(c >= 500 for c in codes) else TemporaryDeliveryError
            raise kind(f"recipients refused: {codes}") from error
        except (OSError, smtplib.SMTPException) as error:
            raise TemporaryDeliveryError(f"SMTP server unreachable: {error}") from error


@dataclass
class InMemoryEmailSender:
    """Fake: keeps messages; refuses addresses it is told to, like a real server would."""

    sent: list[EmailMessage] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    unreachable: bool = False

    async def send(self, message: EmailMessage) -> None:
        if self.unreachable:
            raise TemporaryDeliveryError("SMTP server unreachable: fake outage")
        if str(message["To"]) in self.refused:
            raise PermanentDeliveryError("SMTP 550: mailbox unavailable")
        self.sent.append(message)
