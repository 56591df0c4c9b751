"""Kafka transport security and secrets from files, as settings build them (no I/O but files)."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLScram512

from hub.errors import ConfigurationError
from hub.runtime.kafka import client_config
from hub.runtime.kafka_security import aiokafka_security, faststream_security
from hub.runtime.settings import HubSettings

pytestmark = pytest.mark.unit
BROKERS = "kafka-0.hub.svc:9093"


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / f"{name}.crt", folder / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def _settings(**values: object) -> HubSettings:
    return HubSettings(kafka_bootstrap_servers=BROKERS, **values)  # type: ignore[arg-type]


def test_plaintext_is_the_embedded_default_and_adds_nothing() -> None:
    settings = _settings()
    assert faststream_security(settings) is None
    assert aiokafka_security(settings) == {"security_protocol": "PLAINTEXT"}


def test_sasl_scram_over_tls_configures_the_broker_and_the_hubs_own_clients_alike(tmp_path: Path) -> None:
    ca, _ = _self_signed(tmp_path, "hub-ca")
    settings = _settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="hub-registry",
        kafka_sasl_password="s3cret-from-vault",
        kafka_ssl_cafile=ca,
    )
    security = faststream_security(settings)
    assert isinstance(security, SASLScram512)
    ours = client_config(settings, client_id="hub-registry")
    theirs = parse_security(security)  # what FastStream hands its aiokafka consumers
    for name in ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert ours[name] == theirs[name], name
    assert ours["security_protocol"] == "SASL_SSL"
    context = ours["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 1  # our CA, not the system's bundle


def test_mutual_tls_loads_the_client_certificate(tmp_path: Path) -> None:
    ca, _ = _self_signed(tmp_path, "hub-ca")
    cert, key = _self_signed(tmp_path, "hub-notifications")
    settings = _settings(
        kafka_security_protocol="SSL", kafka_ssl_cafile=ca, kafka_ssl_certfile=cert, kafka_ssl_keyfile=key
    )
    security = faststream_security(settings)
    assert type(security) is BaseSecurity
    assert parse_security(security)["security_protocol"] == "SSL"
    assert aiokafka_security(settings)["security_protocol"] == "SSL"
    wrong_key = tmp_path / "not-a-key.pem"
    wrong_key.write_text("nothing here")
    with pytest.raises(ssl.SSLError):
        faststream_security(settings.model_copy(update={"kafka_ssl_keyfile": wrong_key}))


def test_sasl_without_credentials_is_a_configuration_error() -> None:
    settings = _settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256")
    with pytest.raises(ConfigurationError, match="HUB_KAFKA_SASL_USERNAME"):
        aiokafka_security(settings)


def test_secrets_come_from_files_and_never_show_in_the_settings_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hub_kafka_sasl_password").write_text("scram-from-file")
    (tmp_path / "hub_database_url").write_text("postgresql://hub:pg-from-file@db:5432/hub")
    monkeypatch.setenv("HUB_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv("HUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("HUB_KAFKA_SASL_PASSWORD", raising=False)
    settings = HubSettings()
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "scram-from-file"
    assert settings.database_dsn().endswith("@db:5432/hub")
    shown = f"{settings!r} {settings} {settings.model_dump()}"
    assert "scram-from-file" not in shown
    assert "pg-from-file" not in shown
    # The environment wins over a file, so an operator can override a mounted secret.
    monkeypatch.setenv("HUB_KAFKA_SASL_PASSWORD", "from-env")
    password = HubSettings().kafka_sasl_password
    assert password is not None
    assert password.get_secret_value() == "from-env"


def test_a_mounted_database_password_joins_a_url_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudNativePG hands a managed role's password as a secret of its own; the URL in the
    ConfigMap names host, role and TLS, never the password."""
    (tmp_path / "hub_database_password").write_text("p@ss/w:rd")
    monkeypatch.setenv("HUB_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://hub_registry@hub-db-rw:5432/hub?sslmode=verify-full")
    settings = HubSettings()
    assert settings.database_dsn() == (
        "postgresql://hub_registry:p%40ss%2Fw%3Ard@hub-db-rw:5432/hub?sslmode=verify-full"
    )
    assert "p@ss" not in f"{settings!r} {settings.model_dump()}"
    # A URL that carries a password keeps it: the operator said so explicitly.
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://hub_registry:own@hub-db-rw:5432/hub")
    assert HubSettings().database_dsn() == "postgresql://hub_registry:own@hub-db-rw:5432/hub"
