"""Topic names: the hub's public surface for partners and its internal lanes.

Each partner publishes to its own ``ingress_topic`` (Kafka ACLs let it write that one
only) and reads its own ``delivery_topic``; the other topics are internal between hub
services. The shared ``INGRESS`` topic is read only if ``HUB_SHARED_INGRESS`` is on. Every
consumed topic has a ``<topic>-dlt`` twin; every partner ingress topic shares the one
``hub.ingress-dlt`` (hub/runtime/deadletter.py).

Erasure (``hub person erase``) cannot delete single records from Kafka: what a topic
holds about a person is removed by the topic's retention. So every topic that may carry
personal data (reports with the AHVN13, requests to identity, deliveries, notices, and
their dead-letter twins) is created with a bounded ``retention.ms``
(``HUB_KAFKA_RETENTION_HOURS``); only the topics about agencies, not people, are left to
the cluster's default.
"""

from __future__ import annotations

import re

INGRESS = "hub.ingress"  # the shared ingress of every partner (HUB_SHARED_INGRESS)
INGRESS_PREFIX = "hub.ingress."  # + a partner's slug: that partner's own ingress topic
# Every partner ingress topic, as the registry subscribes to it: a regular expression, which
# Kafka clients match against the start of a topic name, so it is anchored at the end too.
# Written without FastStream's "{name}" placeholders, which it turns into ".*" (an unescaped
# dot that would also match "hub.ingress-dlt"), so FastStream hands it to aiokafka verbatim.
# Their dead letters go to the one "hub.ingress-dlt", so no "hub.ingress.<slug>-dlt" exists.
PARTNER_INGRESS_PATTERN = r"hub\.ingress\.[a-z0-9-]+(\.[a-z0-9-]+)*$"
# The same and the shared ``INGRESS`` itself (HUB_SHARED_INGRESS), still not its "-dlt" twin.
SHARED_AND_PARTNER_INGRESS_PATTERN = r"hub\.ingress(\.[a-z0-9-]+)*$"
IDENTITY_REQUESTS = "hub.identity.requests"
IDENTITY_RESULTS = "hub.identity.results"
NOTIFICATION_REQUESTS = "hub.notification.requests"
NOTIFICATION_STATUS = "hub.notification.status"
ADMIN = "hub.admin"  # operator commands (partners, subscriptions); read by identity and registry
IDENTITY_PARTNERS = "hub.identity.partners"  # partner registrations and status, keyed by partner id
OPS = "hub.ops"  # escalations and other events for the operations team
AUDIT_HEADS = "hub.audit.heads"  # the audit chain's head as the registry published it
DELIVERY_PREFIX = "hub.delivery."
_DEAD_LETTER_SUFFIX = "-dlt"  # hub.runtime.deadletter.DLT_SUFFIX (not imported: that module loads aiokafka)
# Operator commands and the partner register name agencies, their keys and subscriptions,
# never a citizen; every other topic (including ones the hub does not know, e.g. a partner's
# delivery topic created at runtime) is treated as personal.
# The audit chain's published heads (a number and a seal) are kept as long as the log itself.
WITHOUT_PERSONAL_DATA = frozenset({ADMIN, IDENTITY_PARTNERS, AUDIT_HEADS})


def carries_personal_data(topic: str) -> bool:
    """A dead-letter twin carries what its topic carries."""
    return topic.removesuffix(_DEAD_LETTER_SUFFIX) not in WITHOUT_PERSONAL_DATA


_DAY_MS = 24 * 3600 * 1000


def topic_config(
    topic: str, *, retention_hours: float, max_message_bytes: int | None = None
) -> dict[str, str]:
    """The configs the hub creates ``topic`` with.

    A bounded retention if it may carry personal data: Kafka deletes whole segments once
    their newest record is older than ``retention.ms``, and a segment is closed only after
    ``segment.ms`` (7 days by default), so a segment of at most a day bounds a record's stay
    to the retention plus a day.

    Where partners write (``is_ingress``), ``max.message.bytes`` when given: the broker then
    refuses an oversized record (a whole record batch, after compression) before it is
    stored, and the partner's producer is told so; the hub's own check on reading
    (``HUB_MAX_MESSAGE_BYTES``) stays for brokers that do not enforce it.
    """
    config: dict[str, str] = {}
    if carries_personal_data(topic):
        retention_ms = round(retention_hours * 3600 * 1000)
        config |= {"retention.ms": str(retention_ms), "segment.ms": str(min(retention_ms, _DAY_MS))}
    if max_message_bytes is not None and is_ingress(topic):
        config["max.message.bytes"] = str(max_message_bytes)
    return config


# The hub's code names its topics and consumer groups "hub.…" throughout; on the cluster
# they carry the hub's prefix (HUB_TOPIC_PREFIX), so that several hubs (production, test,
# a developer's) share one Kafka cluster without reading each other's records. The runtime
# translates where it meets Kafka: creating topics, publishing, subscribing, reading.
HUB_PREFIX = "hub"
PREFIX_PATTERN = r"^[a-z0-9-]+(\.[a-z0-9-]+)*$"


def on_cluster(name: str, prefix: str) -> str:
    """'hub.admin' -> '<prefix>.admin': a hub topic or group name as the cluster knows it."""
    if prefix == HUB_PREFIX or not name.startswith((HUB_PREFIX + ".", HUB_PREFIX + "-")):
        return name
    return prefix + name[len(HUB_PREFIX) :]


def in_hub(name: str, prefix: str) -> str:
    """The inverse of ``on_cluster``: '<prefix>.admin' -> 'hub.admin'."""
    if prefix == HUB_PREFIX or not name.startswith((prefix + ".", prefix + "-")):
        return name
    return HUB_PREFIX + name[len(prefix) :]


def pattern_on_cluster(pattern: str, prefix: str) -> str:
    """A route's pattern (they all begin with ``hub\\.``) for the topics on the cluster."""
    start = re.escape(HUB_PREFIX + ".")
    if prefix == HUB_PREFIX or not pattern.startswith(start):
        return pattern
    return re.escape(prefix + ".") + pattern[len(start) :]


def partner_slug(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'ch.mun.1061.einwohnerdienste' (a valid topic name part)."""
    return re.sub(r"[^a-z0-9-]+", ".", partner_id.lower()).strip(".")


def delivery_topic(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'hub.delivery.ch.mun.1061.einwohnerdienste'."""
    return DELIVERY_PREFIX + partner_slug(partner_id)


def ingress_topic(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'hub.ingress.ch.mun.1061.einwohnerdienste'."""
    return INGRESS_PREFIX + partner_slug(partner_id)


def is_partner_ingress(topic: str) -> bool:
    """A partner's own ingress topic (not the shared one, not a dead-letter topic)."""
    return re.fullmatch(PARTNER_INGRESS_PATTERN, topic) is not None


def is_ingress(topic: str) -> bool:
    """Where partners write: their own ingress topics and the shared ``INGRESS``."""
    return topic == INGRESS or is_partner_ingress(topic)


def ingress_pattern(*, shared: bool) -> str:
    """What the registry's ingress route reads: every partner's own topic, and ``INGRESS`` if shared."""
    return SHARED_AND_PARTNER_INGRESS_PATTERN if shared else PARTNER_INGRESS_PATTERN
