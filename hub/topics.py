"""Topic names: the hub's public surface for partners and its internal lanes.

Partners publish to ``INGRESS`` and read their own ``delivery_topic``; the other topics
are internal between hub services. Every consumed topic has a ``<topic>-dlt`` twin.
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


def delivery_topic(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'hub.delivery.ch.mun.1061.einwohnerdienste'."""
    slug = re.sub(r"[^a-z0-9-]+", ".", partner_id.lower()).strip(".")
    return DELIVERY_PREFIX + slug
