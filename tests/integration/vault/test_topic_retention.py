"""What erasure cannot reach in Kafka is bounded by retention, set where the hub creates topics.

A record cannot be deleted from a Kafka topic; the hub creates every topic that may carry
personal data with ``retention.ms`` from ``HUB_KAFKA_RETENTION_HOURS``, so the broker
drops such records after that time. Topics about agencies only keep the cluster's default.
The embedded broker (Tansu) stores the config and reports it back, as Apache Kafka does.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hub.runtime import topics
from hub.runtime.kafka import client_config, ensure_topics
from hub.runtime.settings import HubSettings


def test_every_topic_about_people_gets_a_bounded_retention_and_agency_topics_do_not() -> None:
    week = {"retention.ms": str(7 * 24 * 3600 * 1000), "segment.ms": str(24 * 3600 * 1000)}
    personal = (
        topics.INGRESS,
        topics.IDENTITY_REQUESTS,
        topics.IDENTITY_RESULTS,
        topics.NOTIFICATION_REQUESTS,
        topics.NOTIFICATION_STATUS,
        topics.OPS,
        topics.delivery_topic("CH/MUN/1061/einwohnerdienste"),
        topics.ingress_topic("CH/MUN/1061/einwohnerdienste"),
        topics.INGRESS + "-dlt",
        "a.topic.the.hub.does.not.know",
    )
    for topic in personal:
        assert topics.topic_config(topic, retention_hours=168) == week, topic
    for topic in (topics.ADMIN, topics.IDENTITY_PARTNERS, topics.ADMIN + "-dlt"):
        assert topics.topic_config(topic, retention_hours=168) == {}, topic
    half_an_hour = {"retention.ms": "1800000", "segment.ms": "1800000"}
    assert topics.topic_config(topics.INGRESS, retention_hours=0.5) == half_an_hour


@pytest.mark.asyncio
async def test_topics_are_created_with_their_retention(hub_settings: HubSettings) -> None:
    settings = hub_settings.model_copy(update={"kafka_retention_hours": 2.0})
    delivery = topics.delivery_topic(f"CH/MUN/9{uuid.uuid4().int % 1000:03d}/test")
    await ensure_topics(settings, [delivery])
    admin = AIOKafkaAdminClient(**client_config(settings, client_id="test"))
    await admin.start()
    try:
        assert delivery in await admin.list_topics()
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, delivery)])
    finally:
        await admin.close()
    [(error_code, _message, _type, name, entries)] = response.resources
    assert (error_code, name) == (0, delivery)
    configs = {entry[0]: entry[1] for entry in entries}
    assert configs["retention.ms"] == configs["segment.ms"] == str(2 * 3600 * 1000)
