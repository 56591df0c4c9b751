"""The Lucerne service hub's partner client: publish signed CloudEvents, read verified deliveries.

Installs on its own (``pip install ./partner``): pydantic, aiokafka and cryptography, and the
hub's ``contracts``; nothing of the hub's server. ``docs/partners/signing.md`` is the normative
description of what it signs and checks.
"""

from hub_partner.client import Delivery, PartnerClient, RefusedDelivery, check_addressed_to, verify_delivery
from hub_partner.errors import (
    AmbiguousHeaders,
    BadSignature,
    DeliveryRefused,
    MisroutedRecord,
    SignatureRefused,
    UnknownSigningKey,
    UnsignedEvent,
)
from hub_partner.recent_ids import RecentIds
from hub_partner.signing import PublicKey, SigningKey, signed_form
from hub_partner.topics import delivery_topic, ingress_topic, partner_slug

__all__ = [
    "AmbiguousHeaders",
    "BadSignature",
    "Delivery",
    "DeliveryRefused",
    "MisroutedRecord",
    "PartnerClient",
    "PublicKey",
    "RecentIds",
    "RefusedDelivery",
    "SignatureRefused",
    "SigningKey",
    "UnknownSigningKey",
    "UnsignedEvent",
    "check_addressed_to",
    "delivery_topic",
    "ingress_topic",
    "partner_slug",
    "signed_form",
    "verify_delivery",
]
