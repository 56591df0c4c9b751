"""Who gets what on which channel: request, preference, opt-out, inbox copy."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import Channel, Language, NotificationRequested
from services.notifications.domain import (
    OPTED_OUT,
    Delivery,
    Plan,
    Preference,
    inbox_copy_id,
    plan_deliveries,
)

EMAIL = "anna.muster@example.ch"
PHONE = "+41791234567"
CITIZEN = "citizen-1"


def _request(**changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "notification_id": "n-1",
        "recipient": EMAIL,
        "language": Language.DE,
        "template": "relocation.received",
        "placeholders": {},
    }
    return NotificationRequested(**(fields | changes))


def _plan(preference: Preference | None = None, *, sms: bool = True, **changes: Any) -> Plan:
    return plan_deliveries(_request(**changes), preference, sms_available=sms)


def test_without_a_preference_the_notice_goes_by_email() -> None:
    assert _plan() == Plan((Delivery("n-1", Channel.EMAIL, EMAIL),))


def test_a_known_citizen_also_gets_an_inbox_copy() -> None:
    plan = _plan(citizen_id=CITIZEN)
    assert plan.deliveries == (
        Delivery("n-1", Channel.EMAIL, EMAIL),
        Delivery("n-1:inbox", Channel.INBOX, CITIZEN),
    )


def test_no_inbox_copy_when_the_request_forbids_one() -> None:
    assert _plan(citizen_id=CITIZEN, inbox=False).deliveries == (Delivery("n-1", Channel.EMAIL, EMAIL),)


def test_a_preference_for_sms_texts_the_phone_number() -> None:
    plan = _plan(Preference(Channel.SMS), citizen_id=CITIZEN, phone=PHONE, inbox=False)
    assert plan.deliveries == (Delivery("n-1", Channel.SMS, PHONE),)


@pytest.mark.parametrize(
    ("phone", "sms_available"), [(None, True), (PHONE, False)], ids=["no number", "no provider"]
)
def test_an_sms_preference_that_cannot_be_served_falls_back_to_email(
    phone: str | None, sms_available: bool
) -> None:
    plan = _plan(Preference(Channel.SMS), sms=sms_available, citizen_id=CITIZEN, phone=phone, inbox=False)
    assert plan.deliveries == (Delivery("n-1", Channel.EMAIL, EMAIL),)


def test_a_preference_for_the_inbox_sends_nothing_else() -> None:
    assert _plan(Preference(Channel.INBOX), citizen_id=CITIZEN).deliveries == (
        Delivery("n-1", Channel.INBOX, CITIZEN),
    )


def test_an_inbox_preference_without_an_allowed_inbox_falls_back_to_email() -> None:
    assert _plan(Preference(Channel.INBOX), citizen_id=CITIZEN, inbox=False).deliveries == (
        Delivery("n-1", Channel.EMAIL, EMAIL),
    )


def test_an_opted_out_citizen_gets_no_notice_that_is_not_mandatory() -> None:
    plan = _plan(Preference(opted_out=True), citizen_id=CITIZEN, mandatory=False)
    assert plan.refused == OPTED_OUT
    assert plan.deliveries == (Delivery("n-1", Channel.EMAIL, EMAIL),)  # recorded, not sent; no copy


def test_an_opted_out_citizen_still_gets_mandatory_notices() -> None:
    plan = _plan(Preference(Channel.SMS, opted_out=True), citizen_id=CITIZEN, phone=PHONE, mandatory=True)
    assert plan.refused is None
    assert [d.channel for d in plan.deliveries] == [Channel.SMS, Channel.INBOX]


def test_a_channel_set_by_the_producer_overrides_the_preference() -> None:
    plan = _plan(Preference(Channel.INBOX), citizen_id=CITIZEN, channel=Channel.EMAIL, inbox=False)
    assert plan.deliveries == (Delivery("n-1", Channel.EMAIL, EMAIL),)


def test_an_explicit_sms_request_keeps_the_first_releases_meaning() -> None:
    plan = _plan(channel=Channel.SMS, recipient=PHONE)
    assert plan.deliveries == (Delivery("n-1", Channel.SMS, PHONE),)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"channel": Channel.INBOX, "recipient": "x"}, "no inbox"),
        ({"channel": Channel.WEBHOOK, "recipient": "x"}, "webhooks carry partner deliveries"),
    ],
)
def test_requests_no_channel_can_serve_are_refused(changes: dict[str, Any], reason: str) -> None:
    refused = _plan(**changes).refused
    assert refused is not None
    assert reason in refused


def test_an_inbox_copy_id_stays_within_the_contracts_length() -> None:
    long_id = "x" * 128
    copy_id = inbox_copy_id(long_id)
    assert len(copy_id) == 128
    assert copy_id.endswith(":inbox")
    assert copy_id != inbox_copy_id("x" * 127 + "y")
