"""The webhook signature: HMAC-SHA256 over "<timestamp>.<raw body>", checked with a replay window."""

from __future__ import annotations

import json

import pytest

from contracts import Envelope
from contracts.case import CaseRejected
from services.notifications.domain import structured_cloudevent, webhook_notification_id
from services.notifications.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_headers, verify

SECRET = b"whsec-lucerne-0123456789"
BODY = b'{"id":"1"}'
NOW = 1767225600.7


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() -> None:
    # Computed independently: hmac.new(SECRET, b'1767225600.{"id":"1"}', sha256).hexdigest()
    assert signature_headers(SECRET, BODY, now=NOW) == {
        TIMESTAMP_HEADER: "1767225600",
        SIGNATURE_HEADER: "sha256=0ab436c8e938ca8e589c53b186b4f6a2cfc211d8a9377021753eebbcbf6c756e",
    }


def _verify(body: bytes = BODY, secret: bytes = SECRET, *, now: float = NOW, **changes: str | None) -> bool:
    headers = signature_headers(SECRET, BODY, now=NOW)
    timestamp = changes.get("timestamp", headers[TIMESTAMP_HEADER])
    signature = changes.get("signature", headers[SIGNATURE_HEADER])
    return verify(secret, body, timestamp=timestamp, signature_header=signature, now=now)


def test_a_signed_body_verifies() -> None:
    assert _verify()


@pytest.mark.parametrize(
    "case",
    ["changed body", "other secret", "too old", "from the future", "timestamp swapped", "no signature"],
)
def test_tampering_replays_and_missing_headers_are_refused(case: str) -> None:
    refused = {
        "changed body": lambda: _verify(body=b'{"id":"2"}'),
        "other secret": lambda: _verify(secret=b"someone-else-0123456789"),
        "too old": lambda: _verify(now=NOW + 301),
        "from the future": lambda: _verify(now=NOW - 301),
        "timestamp swapped": lambda: _verify(timestamp="1767225601"),
        "no signature": lambda: _verify(signature=None),
    }[case]
    assert not refused()


def test_a_webhook_body_is_a_structured_cloudevent() -> None:
    data = CaseRejected(rejected_by="CH/MUN/1061/einwohnerdienste", reason="nicht bewohnbar")
    envelope = Envelope.new(data, source="urn:ch:lu:hub:service:registry", business_process_id="eumzug-1")
    event = json.loads(structured_cloudevent(envelope, data))
    assert event["specversion"] == "1.0"
    assert event["type"] == CaseRejected.event_type
    assert event["businessprocessid"] == "eumzug-1"
    assert event["data"] == {"rejected_by": "CH/MUN/1061/einwohnerdienste", "reason": "nicht bewohnbar"}
    assert "subject" not in event  # absent attributes are left out, as CloudEvents asks


def test_a_webhook_delivery_id_is_stable_per_partner_and_event() -> None:
    data = CaseRejected(rejected_by="CH/MUN/1061/einwohnerdienste", reason="x")
    envelope = Envelope.new(data, source="urn:x", business_process_id="c")
    first = webhook_notification_id("CH/MUN/1059/a", envelope)
    assert first == webhook_notification_id("CH/MUN/1059/a", envelope)
    assert first != webhook_notification_id("CH/MUN/1061/b", envelope)
    assert len(first) <= 128
