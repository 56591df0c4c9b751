"""The escalation worker, the ingress signature check and the refusal hook, in memory.

``escalation.escalate_overdue`` is the worker's step (one unit of work); ``Escalator``
repeats it in units of work of their own, and a failing step leaves nothing behind.
``refusals.record_refusal`` seals a refused partner event into the audit chain, saying
whether its signature proved the claimed sender.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
from typing import Any

import pytest

from contracts import CaseEscalated, ContractError, NotificationRequested
from hub.audit.chain import Decision
from hub.errors import DatabaseUnavailable, PermanentError, UnknownCase
from hub.runtime import topics
from hub.runtime.messages import RecordingEmitter
from hub.security.signing import BadSignature, SigningKey, StaleEvent, UnknownSigningKey, UnsignedEvent
from services.registry import escalation, handlers, refusals
from services.registry.adapters.memory import MemoryRegistry
from services.registry.domain import CaseStatus
from services.registry.errors import NotAParty, NotAuthorized
from services.registry.ports import UnitOfWork
from tests.fixtures.signing import craft
from tests.unit.registry.support import (
    KRIENS_OFFICE,
    OPERATIONS,
    OPS_EMAIL,
    PORTAL,
    PROCESSES,
    REGISTRY_SOURCE,
    SIGNED,
    UNSIGNED,
    case_of,
    handle,
    incoming,
    mirrored_key,
    moved,
    registry,
    timeline_of,
    uow_of,
)

pytestmark = pytest.mark.asyncio


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def open_with(memory: MemoryRegistry, policy: Any = UNSIGNED) -> Any:
    return functools.partial(
        handlers.on_partner_event, processes=PROCESSES, policy=policy, ops_email=OPS_EMAIL
    )


# Escalation


async def test_a_case_past_its_deadline_is_escalated_and_operations_are_told_twice() -> None:
    clock = Clock()
    memory = registry(clock=clock)
    await handle(memory, open_with(memory), incoming(moved(), case_id="late", partner=PORTAL))
    clock.now += dt.timedelta(seconds=PROCESSES["relocation"].deadline_s + 1)
    emitter = RecordingEmitter(source=REGISTRY_SOURCE)
    step = functools.partial(escalation.escalate_overdue, processes=PROCESSES, ops_email=OPS_EMAIL)
    assert await memory.transactional(emitter)(step) == 1

    assert (await case_of(memory, "late")).status is CaseStatus.ESCALATED
    [event] = [e for e in emitter.emitted if e.topic == topics.OPS]
    assert isinstance(event.data, CaseEscalated)
    missing = ("arrival-registered", "departure-confirmed", "tax-record-updated")
    assert event.data.missing_milestones == missing
    assert [e.topic for e in emitter.emitted if e.topic.startswith(topics.DELIVERY_PREFIX)] == [
        OPERATIONS.delivery_topic
    ]  # under its all-cases subscription
    [mail] = [e.data for e in emitter.emitted if e.topic == topics.NOTIFICATION_REQUESTS]
    assert isinstance(mail, NotificationRequested)
    assert (mail.recipient, mail.template, mail.placeholders["milestone"]) == (
        OPS_EMAIL,
        "case.escalated",
        ", ".join(missing),
    )
    assert (await timeline_of(memory, "late"))[-1].detail == f"deadline passed; missing: {', '.join(missing)}"
    # Escalated once: the next round finds nothing; operations count it once.
    assert await memory.transactional(emitter)(step) == 0
    assert memory.figures.escalated == ["relocation"]


async def test_a_case_within_its_deadline_or_closed_is_not_escalated() -> None:
    clock = Clock()
    memory = registry(clock=clock)
    await handle(memory, open_with(memory), incoming(moved(1), case_id="open", partner=PORTAL))
    await handle(memory, open_with(memory), incoming(moved(2), case_id="done", partner=PORTAL))
    await uow_of(memory).cases.set_status("done", CaseStatus.COMPLETED)
    clock.now += dt.timedelta(seconds=60)
    run = functools.partial(escalation.escalate_overdue, processes=PROCESSES, ops_email=OPS_EMAIL)
    assert await memory.transactional(RecordingEmitter(source=REGISTRY_SOURCE))(run) == 0
    clock.now += dt.timedelta(seconds=PROCESSES["relocation"].deadline_s)
    assert await memory.transactional(RecordingEmitter(source=REGISTRY_SOURCE))(run) == 1
    assert (await case_of(memory, "done")).status is CaseStatus.COMPLETED


async def test_the_escalator_retries_after_a_database_outage_and_stops_when_told() -> None:
    calls: list[str] = []
    stop = asyncio.Event()

    async def flaky(work: Any) -> Any:
        calls.append("tried")
        if len(calls) == 1:
            raise DatabaseUnavailable("connection refused")
        stop.set()
        return 0

    escalator = escalation.Escalator(flaky, PROCESSES, ops_email=OPS_EMAIL, interval_s=0.01)
    await asyncio.wait_for(escalator.run(stop), timeout=5)
    assert calls == ["tried", "tried"]


async def test_a_failing_escalation_leaves_the_case_and_the_outbox_as_they_were() -> None:
    clock = Clock()
    memory = registry(clock=clock)
    await handle(memory, open_with(memory), incoming(moved(), case_id="late", partner=PORTAL))
    clock.now += dt.timedelta(seconds=PROCESSES["relocation"].deadline_s + 1)
    emitter = RecordingEmitter(source=REGISTRY_SOURCE)

    async def fails_after_escalating(uow: UnitOfWork) -> int:
        await escalation.escalate_overdue(uow, processes=PROCESSES, ops_email=OPS_EMAIL)
        raise RuntimeError("the transaction fails at its end")

    with pytest.raises(RuntimeError):
        await memory.transactional(emitter)(fails_after_escalating)
    assert (await case_of(memory, "late")).status is CaseStatus.OPENED
    assert emitter.emitted == []


# The ingress signature check


async def test_an_event_signed_by_the_senders_registered_key_is_accepted() -> None:
    memory = registry()
    key = SigningKey.generate("portal-1")
    memory.state.partner_keys[key.key_id] = mirrored_key(PORTAL, key)
    await handle(memory, open_with(memory, SIGNED), incoming(moved(), case_id="c1", partner=PORTAL, key=key))
    assert await uow_of(memory).cases.exists("c1")


@pytest.mark.parametrize(
    ("signer", "mirrored", "refusal"),
    [
        (None, None, UnsignedEvent),
        ("unknown", None, UnknownSigningKey),
        ("forged", "portal-1", BadSignature),
    ],
)
async def test_an_unsigned_unknown_or_forged_event_opens_nothing(
    signer: Any, mirrored: Any, refusal: type[Exception]
) -> None:
    memory = registry()
    real = SigningKey.generate("portal-1")
    memory.state.partner_keys[real.key_id] = mirrored_key(PORTAL, real)
    key = None if signer is None else SigningKey.generate("portal-1" if signer == "forged" else "nobody-1")
    with pytest.raises(refusal):
        await handle(
            memory, open_with(memory, SIGNED), incoming(moved(), case_id="c1", partner=PORTAL, key=key)
        )
    assert memory.state.cases == {}


async def test_an_old_event_is_refused_after_its_signature_is_checked() -> None:
    memory = registry()
    key = SigningKey.generate("portal-1")
    memory.state.partner_keys[key.key_id] = mirrored_key(PORTAL, key)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    msg = incoming(moved(), case_id="c1", partner=PORTAL, key=key, time=old)
    with pytest.raises(StaleEvent):
        await handle(memory, open_with(memory, SIGNED), msg)
    assert memory.state.cases == {}


# The refusal hook


def record(partner: Any = PORTAL, key: SigningKey | None = None) -> Any:
    return craft(moved(), partner_id=partner.partner_id, case_id="c1", key=key).record(1)


async def refuse(memory: MemoryRegistry, consumed: Any, error: BaseException) -> None:
    async def work(uow: UnitOfWork) -> None:
        await refusals.record_refusal(uow, consumed, error)

    await memory.transactional(RecordingEmitter(source=REGISTRY_SOURCE))(work)


async def test_a_refusal_is_sealed_with_its_reason_class_and_the_sender_proven() -> None:
    memory = registry()
    key = SigningKey.generate("kriens-1")
    memory.state.partner_keys[key.key_id] = mirrored_key(KRIENS_OFFICE, key)
    consumed = record(KRIENS_OFFICE, key)
    await refuse(memory, consumed, NotAParty("not a party"))
    [sealed] = memory.state.audit
    entry = sealed.entry
    assert (entry.decision, entry.reason_class, entry.sender_verified) == (
        Decision.REFUSED,
        "not-a-party",
        True,
    )
    assert (entry.partner_id, entry.case_id, entry.reason) == (
        KRIENS_OFFICE.partner_id,
        "c1",
        "NotAParty: not a party",
    )


@pytest.mark.parametrize(
    ("error", "reason_class"),
    [
        (BadSignature("forged"), "signature"),
        (StaleEvent("old"), "replay-window"),
        (NotAuthorized("role"), "not-authorized"),
        (ContractError("bad"), "contract"),
        (UnknownCase("nowhere"), "unknown-case"),
        (PermanentError("twice"), "refused"),
    ],
)
async def test_every_refusal_of_the_event_is_classed(error: BaseException, reason_class: str) -> None:
    memory = registry()
    await refuse(memory, record(), error)
    [sealed] = memory.state.audit
    assert sealed.entry.reason_class == reason_class
    assert sealed.entry.sender_verified is False  # unsigned, or a signature refusal


async def test_a_signature_of_a_key_not_the_senders_proves_nothing() -> None:
    memory = registry()
    key = SigningKey.generate("kriens-1")
    memory.state.partner_keys[key.key_id] = mirrored_key(KRIENS_OFFICE, key)
    await refuse(memory, record(PORTAL, key), NotAuthorized("claims the portal"))
    assert memory.state.audit[0].entry.sender_verified is False
    revoked = SigningKey.generate("portal-1")
    memory.state.partner_keys[revoked.key_id] = dataclasses.replace(
        mirrored_key(PORTAL, revoked), revoked_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    )
    await refuse(memory, record(PORTAL, revoked), NotAuthorized("revoked key"))
    assert memory.state.audit[1].entry.sender_verified is False


async def test_a_failure_of_the_hub_itself_is_no_refusal() -> None:
    memory = registry()
    await refuse(memory, record(), ZeroDivisionError("a bug"))
    assert memory.state.audit == []


async def test_the_hook_builds_the_unit_of_work_on_the_dead_letters_connection() -> None:
    memory = registry()
    connections: list[Any] = []

    def unit_of_work_on(conn: Any) -> UnitOfWork:
        connections.append(conn)
        return uow_of(memory)

    hook = refusals.recorder(unit_of_work_on)
    await hook("the dead letter's connection", record(), NotAuthorized("role"))
    assert connections == ["the dead letter's connection"]
    assert [s.entry.reason_class for s in memory.state.audit] == ["not-authorized"]
