"""Citizens' email through a relay as a city runs it: STARTTLS or implicit TLS, AUTH only over
an encrypted connection, the relay's certificate checked, and connections kept open.

The relay is a real SMTP server (aiosmtpd) with a certificate made for the test; the
hub's sender speaks to it as to any relay.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from hub.local.embedded.ports import free_port
from services.notifications.email_sender import SmtpAccount, SmtpEmailSender, TemporaryDeliveryError
from services.notifications.settings import NotificationSettings

USER, PASSWORD = "hub-notifications", "relay-password"


@dataclass
class Relay:
    """What the relay saw: each message with the connection, login and TLS it came over."""

    received: list[dict[str, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            {
                "to": envelope.rcpt_tos,
                "peer": session.peer,
                "login": session.auth_data,
                "tls": session.ssl is not None,
            }
        )
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=USER if ok else None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own authority: the CA file the hub is given."""
    folder = tmp_path_factory.mktemp("relay-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "relay.crt", folder / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def starttls_relay(certificate: tuple[Path, Path]) -> Iterator[tuple[Relay, int]]:
    relay, port = Relay(), free_port()
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(certificate),
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
        auth_required=True,
        # A relay gives up idle connections; a second here, minutes at a real one.
        timeout=1,
    )
    controller.start()
    try:
        yield relay, port
    finally:
        controller.stop()


@pytest.fixture
def implicit_tls_relay(certificate: tuple[Path, Path]) -> Iterator[tuple[Relay, int]]:
    relay, port = Relay(), free_port()
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=port,
        ssl_context=_server_context(certificate),
        authenticator=_authenticate,
        auth_required=True,
        # The whole session is TLS; aiosmtpd's check looks for STARTTLS only.
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield relay, port
    finally:
        controller.stop()


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "noreply@hub.stadtluzern.ch", to, "Ihr Umzug"
    message.set_content("Ihre Meldung ist eingegangen.")
    return message


def _account(security: str, ca_file: Path | None, password: str = PASSWORD) -> SmtpAccount:
    return SmtpAccount(security, USER, SecretStr(password), ca_file)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_starttls_then_auth_and_one_connection_for_many_notices(
    starttls_relay: tuple[Relay, int], certificate: tuple[Path, Path]
) -> None:
    relay, port = starttls_relay
    sender = SmtpEmailSender("127.0.0.1", port, account=_account("starttls", certificate[0]), connections=1)
    recipients = [f"{uuid.uuid4().hex[:8]}@example.ch" for _ in range(5)]
    try:
        for to in recipients:
            await sender.send(_message(to))
    finally:
        await sender.aclose()
    assert [r["to"] for r in relay.received] == [[to] for to in recipients]
    assert all(r["tls"] and r["login"] == USER for r in relay.received)
    assert len({r["peer"] for r in relay.received}) == 1  # one TCP connection, TLS and AUTH once
    assert sender.connections_opened == 1


@pytest.mark.asyncio
# aiosmtpd warns of AUTH without STARTTLS; on an implicit-TLS port the whole session is TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_implicit_tls_with_auth(
    implicit_tls_relay: tuple[Relay, int], certificate: tuple[Path, Path]
) -> None:
    relay, port = implicit_tls_relay
    sender = SmtpEmailSender("127.0.0.1", port, account=_account("tls", certificate[0]))
    try:
        await sender.send(_message("a@example.ch"))
    finally:
        await sender.aclose()
    [received] = relay.received
    assert (received["to"], received["login"]) == (["a@example.ch"], USER)
    # The port speaks TLS from the first byte: a sender that does not cannot even greet it.
    plain = SmtpEmailSender("127.0.0.1", port, timeout_s=2)
    with pytest.raises(TemporaryDeliveryError):
        await plain.send(_message("b@example.ch"))
    assert len(relay.received) == 1


@pytest.mark.asyncio
async def test_a_relay_that_requires_auth_refuses_the_sender_without_it(
    starttls_relay: tuple[Relay, int],
) -> None:
    relay, port = starttls_relay
    sender = SmtpEmailSender("127.0.0.1", port)
    with pytest.raises(TemporaryDeliveryError, match="refuses the hub's session"):
        await sender.send(_message("a@example.ch"))
    assert relay.received == []


@pytest.mark.asyncio
async def test_a_wrong_password_is_a_temporary_failure_that_names_the_credentials(
    starttls_relay: tuple[Relay, int], certificate: tuple[Path, Path]
) -> None:
    """The hub's configuration, not the notice, is wrong: it waits and is retried once fixed."""
    relay, port = starttls_relay
    sender = SmtpEmailSender("127.0.0.1", port, account=_account("starttls", certificate[0], password="nope"))
    with pytest.raises(TemporaryDeliveryError, match="check the credentials"):
        await sender.send(_message("a@example.ch"))
    assert relay.received == []


@pytest.mark.asyncio
async def test_a_relay_whose_certificate_is_not_trusted_gets_no_password(
    starttls_relay: tuple[Relay, int],
) -> None:
    relay, port = starttls_relay
    sender = SmtpEmailSender("127.0.0.1", port, account=_account("starttls", None))  # the system's CAs
    with pytest.raises(TemporaryDeliveryError, match="TLS"):
        await sender.send(_message("a@example.ch"))
    assert relay.received == []


@pytest.mark.asyncio
async def test_a_connection_the_relay_closed_while_idle_is_opened_again(
    starttls_relay: tuple[Relay, int], certificate: tuple[Path, Path]
) -> None:
    relay, port = starttls_relay
    sender = SmtpEmailSender("127.0.0.1", port, account=_account("starttls", certificate[0]), connections=1)
    try:
        await sender.send(_message("first@example.ch"))
        await asyncio.sleep(1.5)  # the relay's idle timeout passes
        await sender.send(_message("second@example.ch"))
    finally:
        await sender.aclose()
    assert [r["to"] for r in relay.received] == [["first@example.ch"], ["second@example.ch"]]
    assert sender.connections_opened == 2


def test_credentials_are_refused_without_encryption(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_SMTP_USERNAME", USER)
    monkeypatch.setenv("HUB_SMTP_PASSWORD", PASSWORD)
    with pytest.raises(ValidationError, match="never sent in clear"):
        NotificationSettings()
    monkeypatch.setenv("HUB_SMTP_SECURITY", "starttls")
    account = NotificationSettings().smtp_account()
    assert (account.security, account.username) == ("starttls", USER)
    assert PASSWORD not in repr(account)
