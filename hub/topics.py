"""Topic names: the hub's public surface for partners and its internal lanes.

Partners publish to ``INGRESS`` and read their own ``delivery_topic``; the other topics
are internal between hub services. Every consumed topic has a ``<topic>-dlt`` twin.

Erasure (``hub person erase``) cannot delete single records from Kafka: what a topic
holds about a person is removed by the topic's retention. So every topic that may carry
personal data (reports with the AHVN13, requests to identity, deliveries, notices, and
their dead-letter twins) is created with a bounded ``retention.ms``
(``HUB_KAFKA_RETENTION_HOURS``); only the topics about agencies, not people, are left to
the cluster's default.
"""

from __future__ import annotations

import re

INGRESS = "hub.ingress"
IDENTITY_REQUESTS = "hub.identity.requests"
IDENTITY_RESULTS = "hub.identity.results"
NOTIFICATION_REQUESTS = "hub.notification.requests"
NOTIFICATION_STATUS = "hub.notification.status"
ADMIN = "hub.admin"  # operator commands (partners, subscriptions); read by identity and registry
IDENTITY_PARTNERS = "hub.identity.partners"  # partner registrations and status, keyed by partner id
OPS = "hub.ops"  # escalations and other events for the operations team
DELIVERY_PREFIX = "hub.delivery."
_DEAD_LETTER_SUFFIX = "-dlt"  # hub.deadletter.DLT_SUFFIX (not imported: that module loads aiokafka)
# Operator commands and the partner register name agencies, their keys and subscriptions,
# never a citizen; every other topic (including ones the hub does not know, e.g. a partner's
# delivery topic created at runtime) is treated as personal.
WITHOUT_PERSONAL_DATA = frozenset({ADMIN, IDENTITY_PARTNERS})


def carries_personal_data(topic: str) -> bool:
    """A dead-letter twin carries what its topic carries."""
    return topic.removesuffix(_DEAD_LETTER_SUFFIX) not in WITHOUT_PERSONAL_DATA


_DAY_MS = 24 * 3600 * 1000


def topic_config(topic: str, *, retention_hours: float) -> dict[str, str]:
    """The configs the hub creates ``topic`` with: a bounded retention if it may carry
    personal data. Kafka deletes whole segments once their newest record is older than
    ``retention.ms``, and a segment is closed only after ``segment.ms`` (7 days by default):
    a segment of at most a day bounds a record's stay to the retention plus a day."""
    if not carries_personal_data(topic):
        return {}
    retention_ms = round(retention_hours * 3600 * 1000)
    return {"retention.ms": str(retention_ms), "segment.ms": str(min(retention_ms, _DAY_MS))}


def delivery_topic(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'hub.delivery.ch.mun.1061.einwohnerdienste'."""
    slug = re.sub(r"[^a-z0-9-]+", ".", partner_id.lower()).strip(".")
    return DELIVERY_PREFIX + slug
