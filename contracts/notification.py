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
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
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
    event_type: ClassVar[str] = _PREFIX + "requested.v1"

    notification_id: str = Field(min_length=1, max_length=128)
    channel: Channel = Channel.EMAIL
    recipient: str = Field(min_length=1, max_length=320, description="address on the channel")
    language: Language
    template: str = Field(pattern=_TEMPLATE, max_length=100, examples=["relocation.received"])
    # A dict makes the model unhashable; it stays frozen against reassignment.
    placeholders: dict[str, str]
    mandatory: bool = True

    @model_validator(mode="after")
    def _recipient_fits_channel(self) -> Self:
        # Messages leave out the address itself: it is personal data.
        if self.channel is Channel.EMAIL:
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
