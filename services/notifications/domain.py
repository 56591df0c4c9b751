"""Rules of the notifications service, without I/O: who gets what on which channel, and when
to retry; and the records its stores keep (notices, inbox messages, webhook endpoints)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass, field

from contracts import Channel, Contract, DeliveryStatus, Envelope, NotificationRequested
from hub.vault.crypto import ERASED_TEXT
from services.notifications.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError

OPTED_OUT = "opted out"  # the detail of a notice not sent because the citizen opted out
INBOX_COPY_SUFFIX = ":inbox"
MAX_ID_LENGTH = 128  # NotificationStatusChanged.notification_id
MIN_SECRET_LENGTH = 16  # characters; HMAC-SHA256 keys shorter than this are guessable
# Why a notice's recipient, subject and body cannot be read: they are sealed under the data
# key of the case's person, and that key is destroyed (the person is erased), or the sealed
# value does not authenticate (changed, or copied from another row).
ERASED_REASON = "erased"
TAMPERED_REASON = "tampered"
UNREADABLE_TEXT = {ERASED_REASON: ERASED_TEXT, TAMPERED_REASON: "[unreadable]"}
# What ``hub person erase`` reports of the notices and inbox messages of the person's cases.
UNREADABLE_AFTER_ERASURE = "unreadable (sealed under a destroyed key)"


@dataclass(frozen=True)
class NewNotification:
    notification_id: str
    case_id: str
    channel: str
    recipient: str  # address on the channel: email, E.164 number, citizen id (inbox), partner id (webhook)
    template: str
    subject: str
    body: str
    test_delivery: bool
    traceparent: str | None
    tracestate: str | None
    language: str | None = None
    template_version: int | None = None
    template_source: str | None = None
    citizen_id: str | None = None
    mandatory: bool = True


@dataclass(frozen=True)
class Pending:
    """A notice claimed for sending (now in 'sending'), with what its channel needs."""

    notification_id: str
    case_id: str
    channel: str
    recipient: str
    template: str
    subject: str
    body: str
    language: str | None
    test_delivery: bool
    attempts: int
    traceparent: str | None
    tracestate: str | None
    # ERASED_REASON or TAMPERED_REASON when recipient, subject and body cannot be read; None: readable.
    unreadable: str | None = None

    @property
    def erased(self) -> bool:
        return self.unreadable == ERASED_REASON


def sending_order(item: Pending) -> tuple[str, str]:
    """Notices with the same key go out one after the other, in the order they were requested:
    a citizen must not read "completed" before "received". The key is the case and channel
    (the recipient is sealed, so the store cannot tell recipients apart; a case's notices on a
    channel go to its citizen, or to one partner's webhook in the usual case)."""
    return item.case_id, item.channel


@dataclass(frozen=True)
class Outcome:
    """What one attempt at a claimed notice came to; due again in ``retry_in_s`` (a retry)."""

    notification_id: str
    status: DeliveryStatus
    detail: str | None = None
    retry_in_s: float | None = None


@dataclass(frozen=True)
class Notice:
    """A stored notice as operators and tests see it: where it is in its lifecycle, and what it says."""

    notification_id: str
    case_id: str
    channel: str
    recipient: str
    template: str
    subject: str
    body: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    citizen_id: str | None
    test_delivery: bool
    unreadable: str | None = None


@dataclass(frozen=True)
class NewInboxMessage:
    """What the inbox channel stores of a notice it delivers."""

    notification_id: str
    citizen_id: str
    case_id: str
    template: str
    language: str
    subject: str
    body: str


@dataclass(frozen=True)
class InboxMessage:
    notification_id: str
    case_id: str
    template: str
    language: str
    subject: str
    body: str
    delivered_at: dt.datetime
    read_at: dt.datetime | None
    unreadable: str | None = None  # ERASED_REASON or TAMPERED_REASON

    @property
    def erased(self) -> bool:
        return self.unreadable == ERASED_REASON

    def as_json(self) -> dict[str, object]:
        row = asdict(self)
        row["delivered_at"] = self.delivered_at.isoformat()
        row["read_at"] = self.read_at.isoformat() if self.read_at else None
        return row


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where a partner without Kafka receives the deliveries of its topic."""

    partner_id: str
    topic: str
    url: str
    secret: bytes = field(repr=False)  # never in logs or tracebacks
    updated_at: dt.datetime | None = None


def check_webhook(url: str, secret: str) -> None:
    """Refuses what a partner's webhook may not be; ``ValueError`` with a line for the operator."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the webhook secret must have at least {MIN_SECRET_LENGTH} characters")
    if not url.startswith(("https://", "http://")):
        raise ValueError("the webhook URL must start with https:// (or http:// for local tests)")


@dataclass(frozen=True)
class Preference:
    """What a citizen chose: a channel (None: email) and whether non-mandatory notices reach them."""

    channel: Channel | None = None
    opted_out: bool = False


@dataclass(frozen=True)
class Delivery:
    """One message on one channel; the inbox copy of a notice is a delivery of its own."""

    notification_id: str
    channel: Channel
    address: str  # email address, E.164 number or citizen id (inbox)


@dataclass(frozen=True)
class Plan:
    deliveries: tuple[Delivery, ...]
    # Set when the notice must not go out; the first delivery is then recorded as failed with it.
    refused: str | None = None


def plan_deliveries(
    request: NotificationRequested, preference: Preference | None, *, sms_available: bool
) -> Plan:
    """Pick the channel (request, else preference, else email) and whether to keep an inbox copy."""
    preference = preference or Preference()
    can_use_inbox = request.citizen_id is not None and request.inbox
    primary = _primary(request, preference, can_use_inbox=can_use_inbox, sms_available=sms_available)
    if not request.mandatory and preference.opted_out:
        return Plan((primary,), refused=OPTED_OUT)
    if request.channel is Channel.WEBHOOK:
        return Plan((primary,), refused="webhooks carry partner deliveries, not notices")
    if primary.channel is Channel.INBOX and not can_use_inbox:
        return Plan((primary,), refused="no inbox: no citizen id, or no inbox copy allowed")
    if primary.channel is Channel.INBOX or not can_use_inbox:
        return Plan((primary,))
    assert request.citizen_id is not None  # can_use_inbox says so; mypy cannot see it
    copy = Delivery(inbox_copy_id(request.notification_id), Channel.INBOX, request.citizen_id)
    return Plan((primary, copy))


def _primary(
    request: NotificationRequested, preference: Preference, *, can_use_inbox: bool, sms_available: bool
) -> Delivery:
    notification_id = request.notification_id
    if request.channel is not None:
        # The producer chose; honour it even where a preference would say otherwise.
        address = (request.citizen_id or "") if request.channel is Channel.INBOX else request.recipient
        return Delivery(notification_id, request.channel, address)
    # A preference the request cannot serve degrades to email rather than to silence.
    if preference.channel is Channel.SMS and request.phone is not None and sms_available:
        return Delivery(notification_id, Channel.SMS, request.phone)
    if preference.channel is Channel.INBOX and can_use_inbox:
        assert request.citizen_id is not None
        return Delivery(notification_id, Channel.INBOX, request.citizen_id)
    return Delivery(notification_id, Channel.EMAIL, request.recipient)


def inbox_copy_id(notification_id: str) -> str:
    """``<id>:inbox``, shortened with a digest where that would pass the contracts' 128 characters."""
    copy_id = notification_id + INBOX_COPY_SUFFIX
    if len(copy_id) <= MAX_ID_LENGTH:
        return copy_id
    digest = hashlib.sha256(notification_id.encode()).hexdigest()[:16]
    keep = MAX_ID_LENGTH - len(digest) - len(INBOX_COPY_SUFFIX) - 1
    return f"{notification_id[:keep]}~{digest}{INBOX_COPY_SUFFIX}"


def retry_delay(attempt: int, *, initial_s: float, max_s: float, jitter: float = 1.0) -> float:
    """Exponential backoff: ``initial_s`` after the first attempt, doubling, capped at ``max_s``.

    ``jitter`` (the dispatcher draws it from [1, 1.5)) spreads retries of many notifications
    that failed together, e.g. during one provider outage.
    """
    delay: float = initial_s * 2 ** (attempt - 1) * jitter
    return min(max_s, delay)


def http_failure(status: int) -> type[DeliveryError] | None:
    """How an HTTP answer counts: 2xx delivered; 429 and 5xx may pass later; other codes never will."""
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500:
        return TemporaryDeliveryError
    return PermanentDeliveryError


def structured_cloudevent(envelope: Envelope, data: Contract) -> str:
    """CloudEvents JSON structured mode: the attributes and ``data`` in one object (a webhook body)."""
    event = {**envelope.model_dump(mode="json", exclude_none=True), "data": data.model_dump(mode="json")}
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


_WEBHOOK_IDS = uuid.UUID("6f1d3c2e-4b0a-5c7e-9a51-2f8d0b7c1e43")


def webhook_notification_id(partner_id: str, envelope: Envelope) -> str:
    """Stable per partner and event (a redelivered record maps to the same row), and short."""
    return f"webhook-{uuid.uuid5(_WEBHOOK_IDS, f'{partner_id} {envelope.source} {envelope.id}')}"
