"""Sending email: the SMTP adapter and its in-memory fake share one interface and one test suite."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr

from services.notifications.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError

# The error classes lived here first; callers and the contract suite still import them from here.
__all__ = [
    "DeliveryError",
    "EmailSender",
    "InMemoryEmailSender",
    "PermanentDeliveryError",
    "SmtpAccount",
    "SmtpEmailSender",
    "TemporaryDeliveryError",
]


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


SmtpSecurity = Literal["none", "starttls", "tls"]
# Replies about the hub's session, not the message (RFC 3207, RFC 4954): STARTTLS or AUTH
# required, credentials refused. A notice must not fail for good because of them.
_SESSION_REFUSED = frozenset({530, 534, 535, 538})


def _closed_while_idle(error: smtplib.SMTPException) -> bool:
    """A reused connection the relay had given up: gone, or "421 timeout" before closing."""
    return isinstance(error, smtplib.SMTPServerDisconnected) or (
        isinstance(error, smtplib.SMTPResponseException) and error.smtp_code == 421
    )


@dataclass(frozen=True)
class SmtpAccount:
    """How to reach the relay: transport security, and credentials for AUTH (never sent
    before the connection is encrypted)."""

    security: SmtpSecurity = "none"
    username: str | None = None
    password: SecretStr | None = None
    # The CA bundle the relay's certificate is checked against; None: the system's.
    ca_file: Path | None = None


class SmtpEmailSender:
    """SMTP with connections kept open and reused: a notice costs a MAIL transaction, not a
    TCP connect, TLS handshake and AUTH. Up to ``connections`` messages go out at once."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float = 10.0,
        account: SmtpAccount | None = None,
        connections: int = 4,
    ) -> None:
        self._host, self._port, self._timeout_s = host, port, timeout_s
        self._account = account or SmtpAccount()
        self._idle: list[smtplib.SMTP] = []
        self._slots = threading.BoundedSemaphore(connections)
        # Waiting for a connection happens on the event loop: a send waiting in a thread would
        # hold one of the few threads of the default executor that every to_thread shares.
        self._waiting_for_slot = asyncio.Semaphore(connections)
        self._lock = threading.Lock()
        self.connections_opened = 0

    async def send(self, message: EmailMessage) -> None:
        # smtplib is blocking and battle-tested; a thread keeps the event loop free.
        async with self._waiting_for_slot:
            await asyncio.to_thread(self._send_blocking, message)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for smtp in idle:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()

    def _send_blocking(self, message: EmailMessage) -> None:
        with self._slots:
            smtp: smtplib.SMTP | None = None
            reusable = False
            try:
                smtp, reused = self._connection()
                try:
                    smtp.send_message(message)
                except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as error:
                    if not reused or not _closed_while_idle(error):
                        raise
                    # The relay closed an idle connection before taking the message: once more.
                    self._release(smtp, reusable=False)
                    smtp = self._open()
                    smtp.send_message(message)
                reusable = True
            except smtplib.SMTPAuthenticationError as error:
                # The hub's credentials, not the message: the notice waits until they are fixed.
                raise TemporaryDeliveryError(
                    f"SMTP AUTH refused ({error.smtp_code}): check the credentials"
                ) from error
            except smtplib.SMTPRecipientsRefused as error:
                reusable = True  # the transaction was reset; the connection serves the next one
                codes = [code for code, _ in error.recipients.values()]
                kind = PermanentDeliveryError if all(c >= 500 for c in codes) else TemporaryDeliveryError
                raise kind(f"recipients refused: {codes}") from error
            except smtplib.SMTPResponseException as error:
                if error.smtp_code in _SESSION_REFUSED:
                    raise TemporaryDeliveryError(
                        f"SMTP {error.smtp_code}: the relay refuses the hub's session "
                        f"({error.smtp_error!r}); check HUB_SMTP_SECURITY and the credentials"
                    ) from error
                kind = PermanentDeliveryError if error.smtp_code >= 500 else TemporaryDeliveryError
                raise kind(f"SMTP {error.smtp_code}: {error.smtp_error!r}") from error
            except ssl.SSLError as error:
                raise TemporaryDeliveryError(f"SMTP TLS failed: {error}") from error
            except (OSError, smtplib.SMTPException) as error:
                raise TemporaryDeliveryError(f"SMTP server unreachable: {error}") from error
            finally:
                if smtp is not None:
                    self._release(smtp, reusable)

    def _release(self, smtp: smtplib.SMTP, reusable: bool) -> None:
        if reusable:
            with self._lock:
                self._idle.append(smtp)
            return
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.close()

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._open(), False

    def _open(self) -> smtplib.SMTP:
        account = self._account
        context = ssl.create_default_context(cafile=str(account.ca_file) if account.ca_file else None)
        smtp: smtplib.SMTP
        if account.security == "tls":
            smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout_s)
        try:
            if account.security == "starttls":
                smtp.starttls(context=context)
            if account.username is not None and account.password is not None:
                smtp.login(account.username, account.password.get_secret_value())
        except BaseException:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.close()
            raise
        self.connections_opened += 1
        return smtp


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
