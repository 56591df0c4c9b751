"""What the registry does with identity's answers and notifications' status reports, in memory.

``handlers.deliver_with_pseudonyms`` delivers a case's waiting event to the partners identity
issued a pseudonym for, withholds it from the others, records every decision in the audit
chain and tells the citizen; ``handlers.record_notification_status`` puts a notice's fate
on its case's timeline.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from contracts import CaseDelivery, Channel, DeliveryStatus, NotificationRequested, NotificationStatusChanged
from hub.audit.chain import ChainVerifier, Decision
from hub.errors import UnknownCase
from hub.runtime import topics
from services.registry import handlers
from services.registry.adapters.memory import TEST_AUDIT_KEY, MemoryRegistry
from services.registry.domain import CaseStatus
from tests.unit.registry.support import (
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    MOVE,
    OPS_EMAIL,
    PORTAL,
    PROCESSES,
    TAX_OFFICE,
    UNSIGNED,
    case_of,
    handle,
    incoming,
    issued,
    moved,
    registry,
    timeline_of,
)

pytestmark = pytest.mark.asyncio

CASE = "eumzug-7"
deliver_with_pseudonyms = functools.partial(handlers.deliver_with_pseudonyms, processes=PROCESSES)


async def reported(memory: MemoryRegistry) -> str:
    """A move reported; the id of the request to identity its delivery waits for."""
    on_partner_event = functools.partial(
        handlers.on_partner_event, processes=PROCESSES, policy=UNSIGNED, ops_email=OPS_EMAIL
    )
    run = await handle(memory, on_partner_event, incoming(moved(), case_id=CASE, partner=PORTAL))
    [request] = run.on(topics.IDENTITY_REQUESTS)
    return request.envelope.id


async def answer(
    memory: MemoryRegistry, request_id: str, *partners: Any, citizen_id: str | None = "citizen-services:c1"
) -> Any:
    msg = incoming(issued(*partners, citizen_id=citizen_id), case_id=CASE, reference_id=request_id)
    return await handle(memory, deliver_with_pseudonyms, msg)


async def test_each_partner_with_a_pseudonym_receives_the_event_minimised_under_it() -> None:
    memory = registry()
    run = await answer(memory, await reported(memory), KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    deliveries = [e for e in run.emitted if isinstance(e.data, CaseDelivery)]
    assert [e.topic for e in deliveries] == [
        TAX_OFFICE.delivery_topic,
        KRIENS_OFFICE.delivery_topic,
        LUCERNE_OFFICE.delivery_topic,
    ]
    kriens = next(e for e in deliveries if e.topic == KRIENS_OFFICE.delivery_topic)
    assert kriens.key == CASE
    assert kriens.envelope.subject == "resident-registration:1"  # the recipient's sector pseudonym
    assert isinstance(kriens.data, CaseDelivery)
    assert kriens.data.subject is not None
    assert kriens.data.subject.sector_pseudonym == "resident-registration:1"
    assert kriens.data.subject.official_name == "Muster"
    assert kriens.data.subject.first_name is None  # not among Kriens's fields
    assert set(kriens.data.data) == {"departure", "move_date"}  # never the person itself
    assert kriens.data.event_type_delivered == MOVE
    assert kriens.data.recipient == KRIENS_OFFICE.partner_id


async def test_the_citizen_is_told_of_receipt_with_their_citizen_id_and_the_case_is_in_progress() -> None:
    memory = registry()
    run = await answer(memory, await reported(memory), KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    [notice] = [e.data for e in run.on(topics.NOTIFICATION_REQUESTS)]
    assert isinstance(notice, NotificationRequested)
    assert (notice.template, notice.citizen_id, notice.recipient) == (
        "relocation.received",
        "citizen-services:c1",
        "anna.muster@example.ch",
    )
    assert notice.mandatory
    assert (notice.placeholders["departure"], notice.placeholders["arrival"]) == ("Kriens", "Luzern")
    case = await case_of(memory, CASE)
    assert (case.status, case.citizen_id) == (CaseStatus.IN_PROGRESS, "citizen-services:c1")
    assert memory.state.pending == {}
    steps = await timeline_of(memory, CASE)
    assert (steps[2].service, steps[2].detail) == ("identity", "person match: new")
    assert [s.detail for s in steps[3:]] == [
        f"move-reported delivered to {partner.partner_id} ({fields} fields; RHG Art. 11; party: {slot})"
        for partner, fields, slot in (
            (TAX_OFFICE, 1, "arrival-tax-office"),
            (KRIENS_OFFICE, 2, "departure-municipality"),
            (LUCERNE_OFFICE, 2, "arrival-municipality"),
        )
    ]  # the person travels apart from the data, pseudonymised


async def test_a_partner_identity_issued_no_pseudonym_for_gets_nothing_and_the_audit_log_says_why() -> None:
    memory = registry()
    run = await answer(memory, await reported(memory), KRIENS_OFFICE)
    assert {e.topic for e in run.emitted if isinstance(e.data, CaseDelivery)} == {
        KRIENS_OFFICE.delivery_topic
    }
    entries = [s.entry for s in memory.state.audit]
    assert [(e.decision, e.partner_id) for e in entries] == [
        (Decision.WITHHELD, TAX_OFFICE.partner_id),
        (Decision.DELIVERED, KRIENS_OFFICE.partner_id),
        (Decision.WITHHELD, LUCERNE_OFFICE.partner_id),
    ]
    delivered = entries[1]
    assert (delivered.citizen_id, delivered.person_pseudonym, delivered.basis) == (
        "citizen-services:c1",
        "resident-registration:1",
        "party: departure-municipality",
    )
    assert delivered.fields == (
        "departure.bfs_number",
        "departure.canton",
        "departure.name",
        "move_date",
        "person.official_name",
        "person.sector_pseudonym",
    )
    assert "no pseudonym issued" in (entries[0].reason or "")
    verifier = ChainVerifier(TEST_AUDIT_KEY)
    assert [verifier.feed(sealed) for sealed in memory.state.audit] == [None, None, None]


async def test_a_subscription_revoked_while_identity_answered_gets_nothing() -> None:
    memory = registry()
    request_id = await reported(memory)
    key = (LUCERNE_OFFICE.partner_id, MOVE, "relocation", "")
    sequence, record = memory.state.subscriptions[key]
    memory.state.subscriptions[key] = (sequence, record.__class__(**{**record.__dict__, "status": "revoked"}))
    run = await answer(memory, request_id, KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    assert LUCERNE_OFFICE.delivery_topic not in {e.topic for e in run.emitted}


async def test_a_repeated_answer_delivers_nothing_again() -> None:
    memory = registry()
    request_id = await reported(memory)
    await answer(memory, request_id, KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    audited = len(memory.state.audit)
    run = await answer(memory, request_id, KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    assert run.emitted == []
    assert len(memory.state.audit) == audited
    assert (await timeline_of(memory, CASE))[-1].detail == "person match: new"  # the answer is on record


async def test_an_answer_without_a_citizen_id_keeps_the_case_without_one() -> None:
    memory = registry()
    run = await answer(memory, await reported(memory), KRIENS_OFFICE, citizen_id=None)
    [notice] = [e.data for e in run.on(topics.NOTIFICATION_REQUESTS)]
    assert notice.citizen_id is None
    case = await case_of(memory, CASE)
    assert (case.status, case.citizen_id) == (CaseStatus.IN_PROGRESS, None)


async def test_an_answer_for_an_unknown_case_is_refused() -> None:
    memory = registry()
    msg = incoming(issued(KRIENS_OFFICE), case_id="nowhere", reference_id="r1")
    with pytest.raises(UnknownCase):
        await handle(memory, deliver_with_pseudonyms, msg)


async def test_an_erased_persons_waiting_event_is_not_delivered() -> None:
    memory = registry()
    request_id = await reported(memory)
    memory.state.vault.destroy(memory.state.vault.subject_ref(moved().person.vn))
    run = await answer(memory, request_id, KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    assert run.emitted == []
    assert memory.state.audit == []
    assert (await case_of(memory, CASE)).erased


def status(notification_id: str, state: DeliveryStatus) -> NotificationStatusChanged:
    return NotificationStatusChanged(
        notification_id=notification_id, channel=Channel.EMAIL, status=state, template="relocation.received"
    )


async def test_a_notices_status_lands_on_its_case_timeline() -> None:
    memory = registry()
    await reported(memory)
    msg = incoming(
        status(f"{CASE}:received", DeliveryStatus.DELIVERED),
        case_id=CASE,
        source="urn:ch:lu:hub:service:notifications",
    )
    run = await handle(memory, handlers.record_notification_status, msg)
    assert run.emitted == []
    step = (await timeline_of(memory, CASE))[-1]
    assert (step.service, step.detail, step.event_id) == (
        "notifications",
        "relocation.received via email: delivered",
        msg.envelope.id,
    )


async def test_a_notice_outside_any_case_leaves_no_trace() -> None:
    memory = registry()
    msg = incoming(
        status("ops:1", DeliveryStatus.DELIVERED),
        case_id="ops:1",
        source="urn:ch:lu:hub:service:notifications",
    )
    run = await handle(memory, handlers.record_notification_status, msg)
    assert run.emitted == []
    assert memory.state.timeline == []
