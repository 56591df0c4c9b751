"""NotificationRequested v1 grew optional fields; what the first release sent still validates."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts import Channel, NotificationRequested

FIRST_RELEASE = {
    "notification_id": "eumzug-1:received",
    "channel": "email",
    "recipient": "anna.muster@example.ch",
    "language": "de",
    "template": "relocation.received",
    "placeholders": {"case_id": "eumzug-1"},
    "mandatory": True,
}


def test_a_first_release_request_still_validates_with_the_new_defaults() -> None:
    request = NotificationRequested.model_validate(FIRST_RELEASE)
    assert request.channel is Channel.EMAIL
    assert (request.citizen_id, request.phone, request.inbox) == (None, None, True)


def test_an_unset_channel_means_the_citizens_preference() -> None:
    request = NotificationRequested.model_validate({k: v for k, v in FIRST_RELEASE.items() if k != "channel"})
    assert request.channel is None


def test_the_new_fields_are_accepted() -> None:
    request = NotificationRequested.model_validate(
        FIRST_RELEASE | {"citizen_id": "c-1", "phone": "+41791234567", "inbox": False, "channel": None}
    )
    assert (request.citizen_id, request.phone, request.inbox) == ("c-1", "+41791234567", False)


@pytest.mark.parametrize(
    "changes",
    [
        {"phone": "0791234567"},
        {"phone": "+41 79 123 45 67"},
        {"channel": None, "recipient": "+41791234567"},  # the fallback channel is email
        {"citizen_id": ""},
    ],
)
def test_invalid_additions_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NotificationRequested.model_validate(FIRST_RELEASE | changes)
