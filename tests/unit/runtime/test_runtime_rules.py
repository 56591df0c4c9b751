"""Rules of the shared runtime that need no I/O."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from hub.runtime.consumer import RetryPolicy
from hub.runtime.deadletter import dead_letter_headers, dead_letter_topic
from hub.runtime.endpoints import Endpoints
from hub.runtime.outbox import aggregate_type
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from tests.fixtures.records import consumer_record


def _record(headers: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    return consumer_record(b"{}", headers, partition=2, offset=41, timestamp=1_700_000_000_000)


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(initial_s=0.1, max_s=1.0)
    for attempt in range(1, 12):
        ceiling = min(1.0, 0.1 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
    assert max(policy.delay(10) for _ in range(200)) > 0.5  # jitter spans the range


def test_dead_letter_headers_name_origin_and_reason_as_text() -> None:
    headers = dict(
        dead_letter_headers(_record([("ce_id", b"e-1")]), "hub.registry.ingress", ValueError("bad"), 3)
    )
    assert headers["dlt-original-topic"] == "hub.ingress"
    assert headers["dlt-original-partition"] == "2"
    assert headers["dlt-original-offset"] == "41"
    assert headers["dlt-original-consumer-group"] == "hub.registry.ingress"
    assert headers["dlt-exception-fqcn"] == "builtins.ValueError"
    assert headers["dlt-exception-message"] == "bad"
    assert headers["dlt-attempts"] == "3"
    assert headers["ce_id"] == "e-1"  # the event id survives, so a redrive still deduplicates


def test_dead_letter_topic_is_the_topic_with_dlt_suffix() -> None:
    assert dead_letter_topic("hub.ingress") == "hub.ingress-dlt"


def test_aggregate_type_is_the_event_family() -> None:
    assert aggregate_type("ch.lu.hub.relocation.move-reported.v1") == "relocation"


def test_delivery_topic_is_derived_from_the_participant_id() -> None:
    assert delivery_topic("CH/MUN/1061/einwohnerdienste") == "hub.delivery.ch.mun.1061.einwohnerdienste"


def test_embedded_broker_turns_producer_idempotence_off_for_services() -> None:
    endpoints = Endpoints("127.0.0.1:9092", "postgresql://u:secret@h/db", "127.0.0.1", 2525, True, 1)
    assert endpoints.child_environment()["HUB_KAFKA_ENABLE_IDEMPOTENCE"] == "false"
    assert endpoints.apply(HubSettings()).kafka_enable_idempotence is False
    external = Endpoints("kafka:9092", "postgresql://h/db", "smtp", 25, False, 1)
    assert "HUB_KAFKA_ENABLE_IDEMPOTENCE" not in external.child_environment()
    assert external.apply(HubSettings()).kafka_enable_idempotence is True


def test_database_url_is_a_secret_that_does_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", "postgresql://hub:s3cret@db/hub")
    settings = HubSettings()
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())
    assert settings.database_dsn().endswith("@db/hub")
