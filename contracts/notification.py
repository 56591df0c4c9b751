"""Notification events, after GOV.UK Notify's templates and status lifecycle."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import EmailStr, Field, TypeAdapter, ValidationError, model_validator

from contracts.base import Contract
from contracts.ech import Language

__all__ = [
    "Channel",
    "DeliveryStatus",
    "NotificationRequested",
    "NotificationStatusChanged",
]

_PREFIX = "ch.lu.hub.notification."

_TEMPLATE = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$"
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    INBOX = "inbox"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    """created -> sending -> delivered | one of the failures."""

    CREATED = "created"
    SENDING = "sending"
    DELIVERED = "delivered"
    TEMPORARY_FAILURE = "temporary-failure"
    PERMANENT_FAILURE = "permanent-failure"
    TECHNICAL_FAILURE = "technical-failure"


class NotificationRequested(Contract):
    """Tell a person something: a template, its placeholders, and how to reach them.

    ``channel`` unset means "by the citizen's preference, email by default"; a set channel
    is used as given. ``recipient`` stays the email address (or, with ``channel="sms"``,
    the phone number, as in the first release); ``phone`` lets the preference pick SMS.
    """

    event_type: ClassVar[str] = _PREFIX + "requested.v1"

    notification_id: str = Field(min_length=1, max_length=128)
    channel: Channel | None = Field(default=None, description="unset: the citizen's preference, else email")
    recipient: str = Field(min_length=1, max_length=320, description="address on the channel")
    language: Language
    template: str = Field(pattern=_TEMPLATE, max_length=100, examples=["relocation.received"])
    # A dict makes the model unhashable; it stays frozen against reassignment.
    placeholders: dict[str, str]
    mandatory: bool = Field(default=True, description="false: an opted-out citizen is not told")
    citizen_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="key of the citizen's channel preference and in-app inbox",
    )
    phone: str | None = Field(default=None, pattern=_E164.pattern, description="E.164, for SMS")
    inbox: bool = Field(default=True, description="whether a copy may be kept in the citizen's inbox")

    @model_validator(mode="after")
    def _recipient_fits_channel(self) -> Self:
        # Messages leave out the address itself: it is personal data.
        if self.channel in (Channel.EMAIL, None):
            try:
                _EMAIL.validate_python(self.recipient)
            except ValidationError:
                raise ValueError("recipient is not an email address") from None
        elif self.channel is Channel.SMS and not _E164.fullmatch(self.recipient):
            raise ValueError("recipient is not an E.164 phone number")
        return self


class NotificationStatusChanged(Contract):
    event_type: ClassVar[str] = _PREFIX + "status-changed.v1"

    notification_id: str = Field(min_length=1, max_length=128)
    channel: Channel
    status: DeliveryStatus
    template: str = Field(pattern=_TEMPLATE, max_length=100)
    detail: str | None = Field(default=None, max_length=1000)
