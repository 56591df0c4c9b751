"""Refusal entries without I/O: what they keep of a record, how they are sealed, which errors count."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from aiokafka import ConsumerRecord

from contracts import ContractViolation, EnvelopeError, UnknownEventType
from hub.audit.chain import GENESIS_HASH, AuditEntry, AuditKey, Decision, canonical, seal
from hub.audit.refusals import MAX_REASON, reason_class, refusal_entry
from hub.errors import MessageTooLarge, PermanentError, UnknownCase
from hub.security.signing import BadSignature, FutureEvent, RevokedSigningKey, StaleEvent, UnsignedEvent
from services.registry.errors import NotAuthorized
from services.registry.refusals import REASON_CLASSES
from tests.fixtures.records import consumer_record

KEY = AuditKey(bytes(range(32)))
AT = dt.datetime(2026, 5, 4, 8, 30, 15, 123456, tzinfo=dt.UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def record(
    headers: list[tuple[str, bytes]], value: bytes = b'{"person": {"vn": "7561234567897"}}'
) -> ConsumerRecord[bytes, bytes]:
    return consumer_record(value, headers, offset=1, key=b"eumzug-1")


HEADERS = [
    ("ce_id", b"ev-1"),
    ("ce_source", b"urn:ch:lu:hub:partner:CH/CAN/LU/eportal"),
    ("ce_type", b"ch.lu.hub.relocation.move-reported.v1"),
    ("ce_businessprocessid", b"eumzug-1"),
    ("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode()),
]


def test_a_refusal_keeps_the_claimed_sender_the_event_the_reason_and_the_trace() -> None:
    entry = refusal_entry(
        record(HEADERS),
        BadSignature("forged, or changed after signing"),
        reason_class="signature",
        sender_verified=False,
    )
    assert entry == AuditEntry(
        decision=Decision.REFUSED,
        case_id="eumzug-1",
        case_type="",
        event_id="ev-1",
        event_type="ch.lu.hub.relocation.move-reported.v1",
        trace_id=TRACE,
        partner_id="CH/CAN/LU/eportal",
        reason="BadSignature: forged, or changed after signing",
        reason_class="signature",
        sender_verified=False,
    )


def test_a_record_without_headers_is_still_recorded() -> None:
    entry = refusal_entry(
        record([]), EnvelopeError("missing header ce_id"), reason_class="contract", sender_verified=False
    )
    assert (entry.event_id, entry.event_type, entry.case_id, entry.trace_id, entry.partner_id) == (
        "",
        "",
        "",
        "",
        None,
    )


def test_hostile_header_values_are_cut_and_made_storable() -> None:
    headers = [("ce_id", b"x" * 10_000), ("ce_source", b"urn:evil\x00source")]
    entry = refusal_entry(
        record(headers), UnsignedEvent("y" * 10_000), reason_class="signature", sender_verified=False
    )
    assert entry.event_id == "x" * 200
    assert entry.partner_id == "urn:evil\ufffdsource"  # no partner named: the source as claimed
    assert entry.reason is not None
    assert len(entry.reason) == MAX_REASON


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (UnsignedEvent("x"), "signature"),
        (BadSignature("x"), "signature"),
        (RevokedSigningKey("x"), "signature"),
        (StaleEvent("x"), "replay-window"),
        (FutureEvent("x"), "replay-window"),
        (NotAuthorized("x"), "not-authorized"),
        (ContractViolation("x"), "contract"),
        (EnvelopeError("x"), "contract"),
        (UnknownEventType("x"), "contract"),
        (MessageTooLarge("x"), "too-large"),
        (UnknownCase("x"), "unknown-case"),
        (PermanentError("x is not in the catalogue"), "refused"),
        (ZeroDivisionError("a bug"), None),  # the hub's failure, not a decision about the event
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_the_registry_classes_every_refusal_and_nothing_else(
    error: BaseException, expected: str | None
) -> None:
    assert reason_class(error, REASON_CLASSES) == expected


def refusal(**changes: object) -> AuditEntry:
    base = refusal_entry(
        record(HEADERS), StaleEvent("too old"), reason_class="replay-window", sender_verified=True
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_the_fields_added_for_refusals_are_sealed() -> None:
    original = seal(KEY, refusal(), seq=1, recorded_at=AT, prev_hash=GENESIS_HASH)
    for change in ({"reason_class": "signature"}, {"sender_verified": False}, {"sender_verified": None}):
        assert seal(KEY, refusal(**change), seq=1, recorded_at=AT, prev_hash=GENESIS_HASH) != original
    text = canonical(refusal(), seq=1, recorded_at=AT, key_id="k", prev_hash=GENESIS_HASH)
    assert b'"reason_class":"replay-window"' in text
    assert b'"sender_verified":true' in text


def test_entries_without_the_added_fields_keep_the_canonical_form_they_were_sealed_in() -> None:
    """Entries written before refusals existed still verify: their canonical form is unchanged."""
    text = canonical(
        refusal(reason_class=None, sender_verified=None), seq=1, recorded_at=AT, key_id="k", prev_hash="p"
    )
    assert b"reason_class" not in text
    assert b"sender_verified" not in text
