"""The hub's topic and group names as a partner sees them (``docs/partners/asyncapi.yaml``).

A partner writes its own ingress topic only and reads its own delivery topic only; the hub's
Kafka ACLs allow nothing else. Both carry the hub's topic prefix (``HUB_TOPIC_PREFIX``,
``hub`` unless several hubs share one cluster).
"""

from __future__ import annotations

import re

DEFAULT_PREFIX = "hub"
_PREFIX = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*")


def partner_slug(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'ch.mun.1061.einwohnerdienste' (a valid topic name part)."""
    return re.sub(r"[^a-z0-9-]+", ".", partner_id.lower()).strip(".")


def _checked(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"topic prefix {prefix!r} is not dot-separated lower-case words")
    return prefix


def ingress_topic(partner_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Where ``partner_id`` publishes: '<prefix>.ingress.<slug>'."""
    return f"{_checked(prefix)}.ingress.{partner_slug(partner_id)}"


def delivery_topic(partner_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Where the hub delivers to ``partner_id``: '<prefix>.delivery.<slug>'."""
    return f"{_checked(prefix)}.delivery.{partner_slug(partner_id)}"


def consumer_group(partner_id: str) -> str:
    """The one consumer group the hub's ACLs let ``partner_id`` read with (not prefixed)."""
    return f"partner.{partner_id}"
