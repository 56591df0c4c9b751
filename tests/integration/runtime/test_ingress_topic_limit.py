"""Partner ingress topics carry the hub's size limit as ``max.message.bytes``.

Apache Kafka refuses a larger record batch on such a topic at produce time. The embedded
broker (Tansu) stores the setting and reports it, but does not enforce it: there the hub's
own check on reading (``HUB_MAX_MESSAGE_BYTES``, test_oversized_records.py) is what stops
an oversized record.
"""

from __future__ import annotations

import uuid

import pytest

from hub.runtime.kafka import ensure_topics, ingress_max_message_bytes
from hub.runtime.settings import RECORD_OVERHEAD_BYTES, HubSettings
from hub.runtime.topics import ingress_topic
from tests.fixtures.topics import topic_configs

pytestmark = pytest.mark.asyncio


async def test_partner_ingress_topics_are_created_with_the_hubs_size_limit(hub_settings: HubSettings) -> None:
    settings = hub_settings.model_copy(update={"max_message_bytes": 100_000})
    ingress = ingress_topic(f"CH/MUN/{uuid.uuid4().hex[:8]}/limit-test")
    internal = f"test.limit.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [ingress, internal])

    limit = str(100_000 + RECORD_OVERHEAD_BYTES)
    assert ingress_max_message_bytes(settings) == 100_000 + RECORD_OVERHEAD_BYTES
    assert (await topic_configs(settings.bootstrap_servers(), ingress))["max.message.bytes"] == limit
    # Topics only the hub writes keep the cluster's limit (a broker may report its default).
    assert (await topic_configs(settings.bootstrap_servers(), internal)).get("max.message.bytes") != limit
