"""What the registry stores and reads, as its repositories hand it over; no rules, no I/O.

The case itself, with the rules that decide what happens to it, is the aggregate in
``services.registry.case_domain``; the party rules are in ``parties_domain``, the
subscription rules in ``subscriptions_domain``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from contracts import Jurisdiction
from contracts.channels import PARTNER_SOURCE_PREFIX
from services.registry.parties_domain import Party
from services.registry.subscriptions_domain import (
    PARTY,
    Grant,
    Subscription,
    delivered_basis,
    delivered_fields,
    delivered_text,
)


def claimed_partner(source: str) -> str | None:
    """The partner id an event's ``ce_source`` names; None if it names no partner."""
    return source.removeprefix(PARTNER_SOURCE_PREFIX) if source.startswith(PARTNER_SOURCE_PREFIX) else None


@dataclass(frozen=True)
class Partner:
    """A partner as the registry mirrors it from identity's register."""

    partner_id: str
    name: str
    sector: str
    roles: tuple[str, ...]
    delivery_topic: str
    status: str
    jurisdiction: Jurisdiction | None = None
    local_person_id_category: str | None = None
    sedex_id: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class CatalogEntry:
    event_type: str
    publisher_roles: tuple[str, ...]
    sensitivity: str


@dataclass(frozen=True)
class SubscriptionRecord:
    """A subscription as ``SetSubscription`` sets it: one per partner, type, case type and slot."""

    partner_id: str
    event_type: str
    case_type: str | None
    purpose: str
    legal_basis: str
    legal_basis_url: str | None
    fields: tuple[str, ...]
    retention_days: int
    status: str
    scope: str = PARTY
    slot: str | None = None


@dataclass(frozen=True)
class Subscribed:
    """An approved subscription of an active partner, with where that partner receives."""

    subscription: Subscription
    sector: str
    delivery_topic: str


@dataclass(frozen=True)
class Subscriber:
    """A partner receiving one delivery of a case's event: where it goes, and the
    subscriptions that apply to the case (``grants``, set by ``parties.recipients``), each
    recorded in the audit log with the basis it applies on."""

    partner_id: str
    sector: str
    delivery_topic: str
    grants: tuple[Grant, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return delivered_fields(self.grants)

    @property
    def purpose(self) -> str:
        return delivered_text(grant.purpose for grant in self.grants)

    @property
    def legal_basis(self) -> str:
        return delivered_text(grant.legal_basis for grant in self.grants)

    @property
    def basis(self) -> str | None:
        """Why this partner receives the case's event at all; None: no subscription applies."""
        return delivered_basis(self.grants) if self.grants else None


@dataclass(frozen=True)
class NewCase:
    """A case as its opening event creates it.

    ``details_type``: the contract ``details`` are the data of (it classifies them);
    ``subject_vn``: the AHVN13 of the case's person, used only to find their data key, so
    that the case is sealed under the person's key from its first write (``hub/vault``);
    without one, the case gets a key of its own.
    """

    case_id: str
    case_type: str
    trace_id: str
    traceparent: str | None
    test_delivery: bool
    reported_event_id: str
    details: dict[str, Any]
    deadline_s: float
    details_type: str | None = None
    subject_vn: str | None = None


@dataclass(frozen=True)
class TimelineStep:
    """One step on a case's timeline.

    ``detail`` is stored in clear: it must name or quote no one. ``confidential`` is free
    text a partner wrote about the person (a rejection reason, an action asked of them):
    it is sealed under the case's data key, and readers show ``<detail>: <text>``.
    """

    case_id: str
    service: str
    event_type: str
    event_id: str
    trace_id: str
    detail: str | None = None
    confidential: str | None = None


@dataclass(frozen=True)
class RecordedStep:
    """A timeline step read back; ``erased``: its confidential text is unreadable for good."""

    service: str
    event_type: str
    event_id: str
    trace_id: str
    detail: str | None
    confidential: str | None = None
    erased: bool = False


@dataclass(frozen=True)
class PendingDelivery:
    """An event waiting for identity's pseudonyms (``request_id``: the request's event id)."""

    request_id: str
    case_id: str
    event_id: str
    event_type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class OpenSlot:
    """An unfilled slot of an open case, as late filling looks for it."""

    case_id: str
    case_type: str
    trace_id: str
    party: Party


@dataclass(frozen=True)
class PartnerKey:
    """A partner's signing key as the registry mirrors it from identity."""

    key_id: str
    partner_id: str
    public_key: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    algorithm: str = "ed25519"
