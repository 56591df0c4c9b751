"""Kafka transport security from the hub's settings: TLS, mutual TLS, SASL/SCRAM.

One place decides, and both kinds of clients follow: the FastStream broker of each
service gets a ``BaseSecurity`` object, the hub's own aiokafka clients (outbox
producer, admin, webhook consumer, CLI) get the same settings as keyword arguments.
The embedded broker speaks PLAINTEXT only; production uses ``SASL_SSL`` with SCRAM or
``SSL`` with client certificates, and Kafka ACLs per principal (deploy/README.md).
"""

from __future__ import annotations

import ssl
from typing import Any

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def uses_tls(settings: HubSettings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: HubSettings) -> bool:
    return settings.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")


def ssl_context(settings: HubSettings) -> ssl.SSLContext | None:
    """Server verification against the configured CA (else the system's), plus a client
    certificate when one is set (mutual TLS). Hostname checking stays on."""
    if not uses_tls(settings):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.kafka_ssl_certfile is not None:
        password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            password.get_secret_value() if password else None,
        )
    return context


def _credentials(settings: HubSettings) -> tuple[str, str, str]:
    mechanism, username = settings.kafka_sasl_mechanism, settings.kafka_sasl_username
    password = settings.kafka_sasl_password
    if mechanism is None or username is None or password is None:
        raise ConfigurationError(
            f"HUB_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs "
            "HUB_KAFKA_SASL_MECHANISM, HUB_KAFKA_SASL_USERNAME and HUB_KAFKA_SASL_PASSWORD"
        )
    return mechanism, username, password.get_secret_value()


def faststream_security(settings: HubSettings) -> BaseSecurity | None:
    """The security object for ``KafkaBroker(security=...)``; None for PLAINTEXT."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if uses_sasl(settings):
        mechanism, username, password = _credentials(settings)
        return _SASL[mechanism](username, password, ssl_context=context, use_ssl=uses_tls(settings))
    return BaseSecurity(ssl_context=context, use_ssl=True)


def aiokafka_security(settings: HubSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka producers, consumers and admin clients."""
    config: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        config["ssl_context"] = ssl_context(settings)
    if uses_sasl(settings):
        mechanism, username, password = _credentials(settings)
        config.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    return config
