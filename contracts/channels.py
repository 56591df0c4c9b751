"""The hub's surface for one partner: the two topics it uses, and what travels on them.

Each partner writes its own ingress topic and reads its own delivery topic, both named by the
partner's *slug*. This module states that surface in terms a partner needs (it depends on
nothing but the contracts), for the AsyncAPI document (``contracts.asyncapi``) and for
clients. The hub's runtime names its topics the same way (``hub.runtime.topics``; a unit test keeps
the two in step).
"""

from __future__ import annotations

import re

from contracts.building import ConsultationRequested, EnvironmentOpinionGiven, InsuranceOpinionGiven
from contracts.case import (
    CaseActionRequired,
    CaseCompleted,
    CaseDelivery,
    CaseEscalated,
    CasePartyMissing,
    CaseRejected,
)
from contracts.relocation import ArrivalRegistered, DepartureConfirmed, MoveReported, TaxRecordUpdated

__all__ = [
    "DELIVERABLE_EVENT_TYPES",
    "DELIVERY_EVENT_TYPES",
    "DELIVERY_PREFIX",
    "HUB_DELIVERY_SOURCE",
    "INGRESS_PREFIX",
    "PARTNER_EVENT_TYPES",
    "PARTNER_GROUP_PREFIX",
    "PARTNER_SOURCE_PREFIX",
    "SLUG_PATTERN",
    "delivery_topic",
    "ingress_topic",
    "partner_group",
    "partner_slug",
    "partner_source",
]

INGRESS_PREFIX = "hub.ingress."
DELIVERY_PREFIX = "hub.delivery."
SLUG_PATTERN = r"^[a-z0-9-]+(\.[a-z0-9-]+)*$"
"""What a partner's slug looks like: the topic name part after the prefix."""
PARTNER_SOURCE_PREFIX = "urn:ch:lu:hub:partner:"
"""``ce_source`` of a partner's event: this prefix and the partner id as registered."""
HUB_DELIVERY_SOURCE = "urn:ch:lu:hub:service:registry"
"""``ce_source`` of every delivery: the registry service of the hub publishes them."""
PARTNER_GROUP_PREFIX = "partner."
"""A partner's consumer group is this prefix and its partner id; Kafka ACLs grant no other."""

PARTNER_EVENT_TYPES: tuple[str, ...] = (
    MoveReported.event_type,
    DepartureConfirmed.event_type,
    ArrivalRegistered.event_type,
    TaxRecordUpdated.event_type,
    ConsultationRequested.event_type,
    EnvironmentOpinionGiven.event_type,
    InsuranceOpinionGiven.event_type,
    CaseRejected.event_type,
    CaseActionRequired.event_type,
)
"""The types some partner role may publish on its ingress topic (the registry's catalogue
says which role: ``hub catalog list``); every other type is the hub's own."""

DELIVERY_EVENT_TYPES: tuple[str, ...] = (CaseDelivery.event_type,)
"""What a partner reads on its delivery topic: nothing but deliveries."""

DELIVERABLE_EVENT_TYPES: tuple[str, ...] = (
    *PARTNER_EVENT_TYPES,
    CaseCompleted.event_type,
    CaseEscalated.event_type,
    CasePartyMissing.event_type,
)
"""What a delivery may carry (its ``event_type_delivered``), reduced to the subscription's
fields: an event a partner sent, or one the hub emits about a case."""


def partner_slug(partner_id: str) -> str:
    """``CH/MUN/1061/einwohnerdienste`` -> ``ch.mun.1061.einwohnerdienste``: lower case, and
    every run of characters other than ``a-z``, ``0-9`` and ``-`` one dot, none at either end."""
    return re.sub(r"[^a-z0-9-]+", ".", partner_id.lower()).strip(".")


def ingress_topic(partner_id: str) -> str:
    """Where ``partner_id`` publishes: the only topic whose events the hub accepts as its."""
    return INGRESS_PREFIX + partner_slug(partner_id)


def delivery_topic(partner_id: str) -> str:
    """Where ``partner_id`` reads what the hub delivers to it."""
    return DELIVERY_PREFIX + partner_slug(partner_id)


def partner_source(partner_id: str) -> str:
    """The ``ce_source`` of ``partner_id``'s events."""
    return PARTNER_SOURCE_PREFIX + partner_id


def partner_group(partner_id: str) -> str:
    """The consumer group ``partner_id`` reads its deliveries with."""
    return PARTNER_GROUP_PREFIX + partner_id
