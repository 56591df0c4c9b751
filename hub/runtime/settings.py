"""Settings shared by every hub process, read from the environment (prefix ``HUB_``).

Unset infrastructure settings mean "use the embedded parts": the supervisor starts
them and hands their addresses to the services through these same variables.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "HUB_"
SECRETS_DIR_VARIABLE = "HUB_SECRETS_DIR"
TracesExporter = Literal["none", "console", "jsonl", "otlp"]
# What a Kafka record costs beyond the bytes the hub counts (key + value + headers): the
# record batch header (61 bytes), varint lengths, the timestamp and offset deltas. The
# dead-letter headers (dlt-*, about 1 KiB with the exception message) come on top of a
# dead letter kept whole. Generous on purpose: the limits below are compared with it.
RECORD_OVERHEAD_BYTES = 4 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` for its user, unless the URL names a password itself."""
    parts = urlsplit(url)
    if parts.password is not None or parts.username is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    netloc = f"{parts.username}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


class HubSettings(BaseSettings):
    """Every knob of the hub; the README's configuration table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    state_dir: Path = Field(Path(".hub"), description="Where embedded parts keep their state.")
    kafka_bootstrap_servers: str | None = Field(
        None, description="Kafka bootstrap servers; unset starts the embedded broker."
    )
    kafka_enable_idempotence: bool = Field(
        True, description="Idempotent producer; on for Apache Kafka, the embedded broker rejects it."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SASL_SSL (SCRAM) or SSL (mutual TLS) in production."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] | None = None
    kafka_sasl_username: str | None = Field(None, description="The service's Kafka principal.")
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for the brokers; unset: the system's.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_topic_partitions: int = Field(3, ge=1, description="Partitions of topics the hub creates.")
    topic_prefix: str = Field(
        "hub",
        pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)*$",
        description="First part of every topic and consumer group name (<prefix>.ingress.<partner>, "
        "<prefix>.registry.ingress): one environment per prefix on a shared Kafka cluster.",
    )
    kafka_replication_factor: int = Field(1, ge=1, description="Replication of topics the hub creates.")
    kafka_retention_hours: float = Field(
        168,
        gt=0,
        description="retention.ms of the topics the hub creates that may carry personal data: "
        "how long Kafka keeps a record an erasure cannot reach.",
    )
    database_url: SecretStr | None = Field(
        None, description="PostgreSQL URL; unset starts the embedded PostgreSQL."
    )
    database_password: SecretStr | None = Field(
        None,
        description="The password of HUB_DATABASE_URL's role, when the URL carries none (a mounted "
        "secret file, hub_database_password, as CloudNativePG's managed roles provide it).",
    )
    database_pool_size: int = Field(10, ge=1)
    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = Field(None, description="SMTP server port; unset starts the SMTP sink.")
    smtp_sender: str = "noreply@hub.stadtluzern.ch"
    outbox_batch_size: int = Field(
        2000,
        ge=1,
        description="The most rows the relay claims and publishes at once; its claims grow towards it "
        "while the backlog lasts and shrink again after.",
    )
    consumer_batch_max_records: int = Field(
        500,
        ge=1,
        description="The most records a subscriber takes from the broker at once and processes in one "
        "database transaction.",
    )
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=5000,
        description="fetch.max.wait.ms of every subscriber. Apache Kafka answers a fetch as soon as a "
        "record is there, so this bounds only idle polling; the embedded Tansu broker answers a "
        "caught-up partition after a fraction of it, so there it is part of every hop's latency.",
    )
    consumer_batch_max_bytes: int = Field(
        16 * 1024 * 1024,
        ge=64 * 1024,
        description="The most bytes one fetch of a subscriber asks the broker for (fetch.max.bytes): with "
        "HUB_CONSUMER_BATCH_MAX_RECORDS, bounds a batch's memory.",
    )
    outbox_poll_interval_s: float = Field(
        1.0, gt=0, description="Relay poll when no NOTIFY wakes it (a safety net, not the signal)."
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        description="Largest record (key + value + headers) a subscriber accepts; also the partner "
        "ingress topics' max.message.bytes (plus record overhead).",
    )
    dead_letter_max_stored_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES,
        ge=1024,
        description="A failed record up to this size (key + value + headers) is dead-lettered and kept "
        "whole; a larger one only as a reference: its headers cut short, size, SHA-256 and first bytes.",
    )
    kafka_max_request_bytes: int = Field(
        1024 * 1024,
        ge=16 * 1024,
        description="The producer's max_request_size: the largest record the hub publishes. At most the "
        "brokers' message.max.bytes and the max.message.bytes of the topics the hub writes.",
    )
    shutdown_grace_s: float = Field(
        15.0, gt=0, description="SIGTERM: how long in-flight records may take to finish and commit."
    )
    startup_wait_s: float = Field(
        60.0,
        ge=0,
        description="At start, how long a service waits for PostgreSQL and Kafka to become reachable.",
    )
    retry_backoff_initial_s: float = Field(0.2, gt=0)
    retry_backoff_max_s: float = Field(10.0, gt=0)
    pseudonym_key_file: Path | None = Field(
        None, description="Secret for sector pseudonyms; unset keeps one under state_dir."
    )
    audit_key_file: Path | None = Field(
        None, description="HMAC key of the audit chain; unset keeps one under state_dir."
    )
    master_key_file: Path | None = Field(
        None,
        description="Vault master key: wraps the per-person data keys; unset keeps one under state_dir.",
    )
    traces_exporter: TracesExporter = Field(
        "none", description="Span export when OTEL_EXPORTER_OTLP_ENDPOINT is unset."
    )
    traces_file: Path | None = Field(None, description="Target of the jsonl exporter.")
    trace_database: bool = Field(
        False,
        description="A span per database statement (the asyncpg instrumentation). Off by default: "
        "a record's process span then covers its handler's statements as a whole.",
    )
    require_signatures: bool = Field(
        True, description="Refuse partner events at ingress without a valid signature."
    )
    event_max_age_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="Partner events whose time is older are refused as replays; exceed the longest outage.",
    )
    event_max_future_skew_s: float = Field(
        300.0, ge=0, description="Partner events further in the future than this clock skew are refused."
    )
    signing_key_file: Path | None = Field(
        None, description="The hub's Ed25519 key for deliveries (PEM); unset keeps one under state_dir."
    )
    operator_key_file: Path | None = Field(
        None,
        description="The operator's Ed25519 key (PEM) the CLI signs hub.admin commands with; unset keeps "
        "one under state_dir.",
    )
    operator_public_keys: Path | None = Field(
        None,
        description="Operator public keys identity and the registry trust for hub.admin commands: a file "
        "or a directory of *.pub / *.pem files; unset trusts the local operator key only.",
    )
    demo_partners: bool = Field(
        True,
        description="hub up / hub demo: migrate, then seed the demo partners and their subscriptions "
        "(hub/local/seed) before the services start. Migrations never create a partner.",
    )
    demo_partner_keys: bool = Field(
        True,
        description="hub up / hub demo: key pairs for every registered partner under state_dir, registered "
        "before the hub is reported up. Off where partners hold their own keys.",
    )
    local_secrets: bool = Field(
        False,
        description="Create a missing key under state_dir on first use: hub up and hub demo set it "
        "for the services they start. Off, a service refuses to start without its secrets.",
    )
    migrate_on_start: bool = Field(
        True,
        description="Each service migrates its schema when it starts (one role for everything, as "
        "locally). Off in production: `hub db migrate` migrates as the owner, services run as "
        "their own roles and refuse a schema that is behind.",
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: one readable line per event; json: one JSON object per line, with the "
        "trace and span ids of the work it belongs to (for a log collector).",
    )
    health_host: str = Field(
        "127.0.0.1",
        description="Address the health and metrics server binds; 0.0.0.0 in a pod, so probes reach it.",
    )
    health_port: int | None = Field(None, description="HTTP port for liveness/readiness.")

    @model_validator(mode="after")
    def _limits_fit_the_producer(self) -> HubSettings:
        """Whatever the hub accepts or keeps must fit what its producer may publish: a dead
        letter kept whole, or an event built from a record the hub accepted, that exceeds
        max_request_size could never leave the outbox."""
        for name, size in (
            ("HUB_MAX_MESSAGE_BYTES", self.max_message_bytes),
            ("HUB_DEAD_LETTER_MAX_STORED_BYTES", self.dead_letter_max_stored_bytes),
        ):
            if size + RECORD_OVERHEAD_BYTES > self.kafka_max_request_bytes:
                raise ValueError(
                    f"{name} ({size}) plus {RECORD_OVERHEAD_BYTES} bytes of record overhead exceeds "
                    f"HUB_KAFKA_MAX_REQUEST_BYTES ({self.kafka_max_request_bytes})"
                )
        return self

    @field_validator("log_level")
    @classmethod
    def _upper_log_level(cls, value: str) -> str:
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then one file per setting in ``HUB_SECRETS_DIR``.

        Kubernetes and Docker mount secrets as files (``/run/secrets/hub_database_url``);
        reading them there keeps passwords out of the process environment and its dumps.
        The directory is looked up when settings are built, not at import.
        """
        secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
        if secrets_dir:
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap_servers is None or self.database_url is None

    def database_dsn(self) -> str:
        if self.database_url is None:
            raise RuntimeError("HUB_DATABASE_URL is not set and no embedded PostgreSQL was started")
        url = self.database_url.get_secret_value()
        if self.database_password is None:
            return url
        return with_password(url, self.database_password.get_secret_value())

    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap_servers is None:
            raise RuntimeError("HUB_KAFKA_BOOTSTRAP_SERVERS is not set and no embedded broker was started")
        return self.kafka_bootstrap_servers
