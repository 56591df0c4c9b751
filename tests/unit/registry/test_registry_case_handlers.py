"""The registry's partner events in memory: a case opens, its parties move it, it completes,
is rejected or asks the citizen for something, and every refusal leaves it untouched.

``handlers.on_partner_event`` with the in-memory adapter and a recording emitter; what was
stored is read back through the ports, what was emitted from the emitter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from typing import Any

import pytest

from contracts import (
    KRIENS,
    LUCERNE,
    ZUG,
    ArrivalRegistered,
    CaseActionRequired,
    CaseCompleted,
    CasePartyMissing,
    CaseRejected,
    DepartureConfirmed,
    NotificationRequested,
    PseudonymsRequested,
    TaxRecordUpdated,
)
from hub.audit.chain import Decision
from hub.errors import PermanentError, UnknownCase
from hub.runtime import topics
from hub.runtime.messages import RecordingEmitter
from services.registry import handlers
from services.registry.adapters.memory import MemoryRegistry
from services.registry.domain import CaseStatus, ProcessDefinition, Processes
from services.registry.errors import CaseAlreadyFinal, CaseExists, NotAParty, NotAuthorized
from services.registry.ports import UnitOfWork
from tests.unit.registry.support import (
    ARRIVED,
    COMPLETED,
    DEPARTED,
    EMMEN_OFFICE,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    MOVE,
    OPERATIONS,
    OPS_EMAIL,
    PORTAL,
    PROCESSES,
    REGISTRY_SOURCE,
    REJECTED,
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

CASE = "eumzug-1"
TODAY = dt.date(2026, 12, 1)
on_partner_event = functools.partial(
    handlers.on_partner_event, processes=PROCESSES, policy=UNSIGNED, ops_email=OPS_EMAIL
)


async def send(memory: MemoryRegistry, partner: Any, data: Any, case_id: str = CASE) -> Any:
    return await handle(memory, on_partner_event, incoming(data, case_id=case_id, partner=partner))


async def opened(memory: MemoryRegistry, **move: Any) -> None:
    """A move reported and identity's answer delivered: the case is in progress."""
    report = await send(memory, PORTAL, moved(**move))
    [request] = report.on(topics.IDENTITY_REQUESTS)
    answer = incoming(
        issued(KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE, EMMEN_OFFICE),
        case_id=CASE,
        reference_id=request.envelope.id,
    )
    await handle(memory, functools.partial(handlers.deliver_with_pseudonyms, processes=PROCESSES), answer)


async def footprint(memory: MemoryRegistry) -> tuple[Any, ...]:
    """Everything a step could change about the case."""
    case = await case_of(memory, CASE)
    return case.status, case.milestones, len(await timeline_of(memory, CASE)), len(memory.state.audit)


# Opening


async def test_a_reported_move_opens_a_case_of_its_parties_and_asks_identity_for_their_pseudonyms() -> None:
    memory = registry()
    report = moved()
    run = await send(memory, PORTAL, report)

    case = await case_of(memory, CASE)
    assert (case.case_type, case.status, case.trace_id) == (
        "relocation",
        CaseStatus.OPENED,
        "4bf92f3577b34da6a3ce929d0e0e4736",
    )
    assert "vn" not in case.details["person"]  # the AHVN13 goes to identity only
    assert case.details["person"]["first_name"] == report.person.first_name
    assert {p.slot: p.partner_id for p in case.parties} == {
        "opener": PORTAL.partner_id,
        "departure-municipality": KRIENS_OFFICE.partner_id,
        "arrival-municipality": LUCERNE_OFFICE.partner_id,
        "arrival-tax-office": TAX_OFFICE.partner_id,
    }  # no departure tax office: the move stays in the canton
    [request] = run.emitted
    assert request.topic == topics.IDENTITY_REQUESTS
    assert isinstance(request.data, PseudonymsRequested)
    assert request.data.person == report.person
    assert request.data.citizen_pseudonym
    assert {r.partner_id for r in request.data.recipients} == {
        KRIENS_OFFICE.partner_id,
        LUCERNE_OFFICE.partner_id,
        TAX_OFFICE.partner_id,
    }  # Emmen subscribes to moves but is no party to this one
    assert request.envelope.referenceid == run.emitted[0].envelope.referenceid
    pending = memory.state.pending[request.envelope.id].pending
    assert (pending.case_id, pending.event_type) == (CASE, MOVE)
    steps = await timeline_of(memory, CASE)
    assert [(s.service, s.detail) for s in steps] == [
        (PORTAL.partner_id, "Umzug melden (eUmzugCH)"),
        ("registry", "relocation, 3 recipients, 4 of 4 party slots filled"),
    ]
    assert memory.state.audit == []  # nothing delivered yet


async def test_a_case_type_without_a_person_to_identify_is_delivered_at_once() -> None:
    """Without a subject person there is nothing to ask identity: the parties receive the
    opening event as it is, and the citizen is told of receipt."""
    relocation = PROCESSES["relocation"]
    anonymous = ProcessDefinition.model_validate({**relocation.model_dump(), "subject_person": None})
    memory = registry()
    handler = functools.partial(
        handlers.on_partner_event, processes=Processes([anonymous]), policy=UNSIGNED, ops_email=OPS_EMAIL
    )
    run = await handle(memory, handler, incoming(moved(), case_id=CASE, partner=PORTAL))
    assert run.on(topics.IDENTITY_REQUESTS) == []
    assert run.types() == [  # by partner id
        (TAX_OFFICE.delivery_topic, MOVE),
        (KRIENS_OFFICE.delivery_topic, MOVE),
        (LUCERNE_OFFICE.delivery_topic, MOVE),
        (topics.NOTIFICATION_REQUESTS, "ch.lu.hub.notification.requested.v1"),
    ]
    [notice] = [e.data for e in run.on(topics.NOTIFICATION_REQUESTS)]
    assert (notice.template, notice.citizen_id) == ("relocation.received", None)
    assert [s.entry.decision for s in memory.state.audit] == [Decision.DELIVERED] * 3
    assert memory.state.pending == {}


async def test_a_slot_nobody_fills_is_on_the_timeline_and_operations_are_told() -> None:
    memory = registry()
    run = await send(memory, PORTAL, moved(arrival=ZUG))
    case = await case_of(memory, CASE)
    unfilled = [p for p in case.parties if not p.filled]
    assert [p.slot for p in unfilled] == ["arrival-municipality", "arrival-tax-office"]
    assert unfilled[0].unfilled_reason is not None
    assert "no active partner with role municipality" in unfilled[0].unfilled_reason
    missing = [e.data for e in run.on(topics.OPS)]
    assert [m.slot for m in missing if isinstance(m, CasePartyMissing)] == [
        "arrival-municipality",
        "arrival-tax-office",
    ]
    # Delivered to operations under their all-cases subscription, and mailed to them.
    assert len(run.on(OPERATIONS.delivery_topic)) == 2
    notices = [e.data for e in run.on(topics.NOTIFICATION_REQUESTS)]
    assert [(n.recipient, n.template) for n in notices if isinstance(n, NotificationRequested)] == [
        (OPS_EMAIL, "case.party-missing"),
        (OPS_EMAIL, "case.party-missing"),
    ]
    steps = [s.detail or "" for s in await timeline_of(memory, CASE) if s.event_type == "party-unfilled"]
    assert len(steps) == 2
    assert steps[0].startswith("nobody fills arrival-municipality (municipality, ")


async def test_a_business_process_id_opens_one_case_only() -> None:
    memory = registry()
    await send(memory, PORTAL, moved())
    before = await footprint(memory)
    with pytest.raises(CaseExists, match="already exists"):
        await send(memory, PORTAL, moved(2))
    assert await footprint(memory) == before


async def test_a_partner_without_the_opening_role_opens_nothing() -> None:
    memory = registry()
    memory.state.catalogue[MOVE] = dataclasses.replace(
        memory.state.catalogue[MOVE], publisher_roles=("portal", "municipality")
    )
    with pytest.raises(NotAuthorized, match="may not open a relocation case"):
        await send(memory, KRIENS_OFFICE, moved())
    assert memory.state.cases == {}


# Who sends


async def test_a_source_that_is_no_partner_is_refused() -> None:
    memory = registry()
    msg = incoming(moved(), case_id=CASE, source="urn:ch:lu:hub:service:identity")
    with pytest.raises(NotAuthorized, match="is not a partner"):
        await handle(memory, on_partner_event, msg)


async def test_an_unknown_or_suspended_partner_is_refused() -> None:
    memory = registry(partners=tuple(p for p in (PORTAL, KRIENS_OFFICE) if p is not PORTAL))
    with pytest.raises(NotAuthorized, match=f"unknown partner {PORTAL.partner_id}"):
        await send(memory, PORTAL, moved())
    memory.state.partners[PORTAL.partner_id] = dataclasses.replace(PORTAL, status="suspended")
    with pytest.raises(NotAuthorized, match=f"partner {PORTAL.partner_id} is suspended"):
        await send(memory, PORTAL, moved())
    assert memory.state.cases == {}


async def test_a_type_outside_the_catalogue_or_the_senders_roles_is_refused() -> None:
    memory = registry()
    with pytest.raises(NotAuthorized, match=re.escape(f"may not publish {MOVE}")):
        await send(memory, KRIENS_OFFICE, moved())
    del memory.state.catalogue[MOVE]
    with pytest.raises(NotAuthorized, match="is not in the catalogue"):
        await send(memory, PORTAL, moved())
    assert memory.state.cases == {}


async def test_a_step_on_an_unknown_case_is_refused() -> None:
    memory = registry()
    with pytest.raises(UnknownCase, match="no case with business process id nowhere"):
        await send(
            memory, KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY), "nowhere"
        )


async def test_a_type_outside_the_cases_process_is_refused() -> None:
    memory = registry()
    await opened(memory)
    memory.state.catalogue[COMPLETED] = dataclasses.replace(
        memory.state.catalogue[COMPLETED], publisher_roles=("municipality",)
    )
    completed = CaseCompleted(case_type="relocation", completed_at=dt.datetime.now(dt.UTC), milestones=())
    with pytest.raises(PermanentError, match="is not part of a relocation case"):
        await send(memory, KRIENS_OFFICE, completed)


# Milestones and completion


async def test_a_party_reaches_its_milestone_the_subscribers_hear_of_it_and_the_citizen_is_told() -> None:
    memory = registry()
    await opened(memory)
    run = await send(memory, KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY))
    case = await case_of(memory, CASE)
    assert (case.status, case.milestones) == (CaseStatus.IN_PROGRESS, {"departure-confirmed"})
    assert memory.state.milestones[CASE]["departure-confirmed"][0] == KRIENS_OFFICE.partner_id
    assert run.types() == [
        (KRIENS_OFFICE.delivery_topic, DEPARTED),
        (LUCERNE_OFFICE.delivery_topic, DEPARTED),
        (topics.NOTIFICATION_REQUESTS, "ch.lu.hub.notification.requested.v1"),
    ]
    [notice] = [e.data for e in run.on(topics.NOTIFICATION_REQUESTS)]
    assert isinstance(notice, NotificationRequested)
    assert (notice.template, notice.citizen_id) == ("relocation.departure-confirmed", "citizen-services:c1")
    assert (notice.placeholders["milestone"], notice.placeholders["partner"]) == (
        "departure confirmed",
        "Kriens",
    )
    steps = await timeline_of(memory, CASE)
    assert (steps[-3].service, steps[-3].detail) == (KRIENS_OFFICE.partner_id, "departure-confirmed")


async def test_the_last_milestone_completes_the_case_and_every_party_hears_of_it() -> None:
    memory = registry()
    await opened(memory)
    await send(memory, KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY))
    await send(memory, TAX_OFFICE, TaxRecordUpdated(updated_on=TODAY))
    run = await send(memory, LUCERNE_OFFICE, ArrivalRegistered(municipality=LUCERNE, registered_on=TODAY))
    case = await case_of(memory, CASE)
    assert case.status is CaseStatus.COMPLETED
    assert memory.state.cases[CASE].closed_at is not None
    completions = [
        e
        for e in run.emitted
        if e.envelope.type == "ch.lu.hub.case.delivery.v1" and e.data.event_type_delivered == COMPLETED
    ]
    assert {e.topic for e in completions} == {
        KRIENS_OFFICE.delivery_topic,
        LUCERNE_OFFICE.delivery_topic,
        TAX_OFFICE.delivery_topic,
    }
    assert completions[0].data.data["milestones"] == [
        "arrival-registered",
        "departure-confirmed",
        "tax-record-updated",
    ]
    assert completions[0].envelope.referenceid == case.reported_event_id
    templates = [e.data.template for e in run.on(topics.NOTIFICATION_REQUESTS)]
    assert templates == ["relocation.arrival-registered", "relocation.completed"]
    assert (await timeline_of(memory, CASE))[-1].detail == "all milestones reached"


async def test_a_milestone_reached_again_changes_nothing_but_is_passed_on() -> None:
    memory = registry()
    await opened(memory)
    await send(memory, KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY))
    first = memory.state.milestones[CASE]["departure-confirmed"]
    await send(memory, KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY))
    assert memory.state.milestones[CASE]["departure-confirmed"] == first
    assert (await case_of(memory, CASE)).status is CaseStatus.IN_PROGRESS


async def test_an_escalated_case_completes_when_its_milestones_come_in() -> None:
    memory = registry()
    await opened(memory)
    memory.state.cases[CASE].status = CaseStatus.ESCALATED
    await send(memory, KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY))
    assert (await case_of(memory, CASE)).status is CaseStatus.ESCALATED
    await send(memory, TAX_OFFICE, TaxRecordUpdated(updated_on=TODAY))
    await send(memory, LUCERNE_OFFICE, ArrivalRegistered(municipality=LUCERNE, registered_on=TODAY))
    assert (await case_of(memory, CASE)).status is CaseStatus.COMPLETED


# Rejection and requests to the citizen


async def test_a_party_rejects_the_case_the_others_and_the_citizen_learn_why() -> None:
    memory = registry()
    await opened(memory)
    reason = "Die Wohnung ist nicht bewohnbar."
    run = await send(
        memory, LUCERNE_OFFICE, CaseRejected(rejected_by=LUCERNE_OFFICE.partner_id, reason=reason)
    )
    assert (await case_of(memory, CASE)).status is CaseStatus.REJECTED
    assert {e.topic for e in run.emitted if e.topic.startswith(topics.DELIVERY_PREFIX)} == {
        KRIENS_OFFICE.delivery_topic,
        TAX_OFFICE.delivery_topic,
    }  # not back to Lucerne
    [notice] = [e.data for e in run.on(topics.NOTIFICATION_REQUESTS)]
    assert (notice.template, notice.placeholders["reason"]) == ("relocation.rejected", reason)
    step = (await timeline_of(memory, CASE))[-3]
    assert (step.detail, step.confidential) == ("rejected", reason)  # the reason is sealed, not in clear


async def test_a_working_party_asks_the_citizen_to_act_and_the_case_stays_open() -> None:
    memory = registry()
    await opened(memory)
    asked = CaseActionRequired(
        requested_by=LUCERNE_OFFICE.partner_id, action="Bitte reichen Sie den Mietvertrag ein.", due_on=TODAY
    )
    run = await send(memory, LUCERNE_OFFICE, asked)
    assert (await case_of(memory, CASE)).status is CaseStatus.IN_PROGRESS
    [notice] = [e.data for e in run.emitted]  # no delivery: the request is for the citizen
    assert isinstance(notice, NotificationRequested)
    assert (notice.template, notice.placeholders["action"], notice.placeholders["due_on"]) == (
        "relocation.action-required",
        asked.action,
        "2026-12-01",
    )
    step = (await timeline_of(memory, CASE))[-1]
    assert (step.service, step.detail, step.confidential) == (
        LUCERNE_OFFICE.partner_id,
        "action required",
        asked.action,
    )


# Not a party, and closed cases


@pytest.mark.parametrize(
    ("partner", "data", "needed"),
    [
        (EMMEN_OFFICE, ArrivalRegistered(municipality=LUCERNE, registered_on=TODAY), "arrival-municipality"),
        (
            LUCERNE_OFFICE,
            DepartureConfirmed(municipality=LUCERNE, confirmed_on=TODAY),
            "departure-municipality",
        ),
        (
            EMMEN_OFFICE,
            CaseRejected(rejected_by=EMMEN_OFFICE.partner_id, reason="Nicht bei uns."),
            "a rejection",
        ),
        (
            EMMEN_OFFICE,
            CaseActionRequired(requested_by=EMMEN_OFFICE.partner_id, action="Bitte melden."),
            "a request to the citizen",
        ),
    ],
)
async def test_a_partner_that_is_not_the_party_a_step_needs_leaves_the_case_untouched(
    partner: Any, data: Any, needed: str
) -> None:
    memory = registry()
    await opened(memory)
    before = await footprint(memory)
    with pytest.raises(
        NotAParty, match=f"{partner.partner_id} is not a party to this relocation case as"
    ) as refused:
        await send(memory, partner, data)
    assert needed in str(refused.value)
    assert await footprint(memory) == before


@pytest.mark.parametrize("final", [CaseStatus.COMPLETED, CaseStatus.REJECTED])
@pytest.mark.parametrize(
    "data",
    [
        DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY),
        CaseRejected(rejected_by=KRIENS_OFFICE.partner_id, reason="Zu spät."),
        CaseActionRequired(requested_by=KRIENS_OFFICE.partner_id, action="Bitte melden."),
    ],
)
async def test_no_step_is_taken_on_a_case_that_is_already_final(final: CaseStatus, data: Any) -> None:
    memory = registry()
    await opened(memory)
    memory.state.cases[CASE].status = final
    before = await footprint(memory)
    with pytest.raises(CaseAlreadyFinal, match=f"case {CASE} is already {final}"):
        await send(memory, KRIENS_OFFICE, data)
    assert await footprint(memory) == before


async def test_a_rejection_by_a_party_outside_the_rejection_slots_is_refused_before_finality() -> None:
    memory = registry()
    await opened(memory)
    memory.state.cases[CASE].status = CaseStatus.COMPLETED
    with pytest.raises(NotAParty):
        await send(memory, EMMEN_OFFICE, CaseRejected(rejected_by=EMMEN_OFFICE.partner_id, reason="Nein."))


async def test_an_uninvolved_partner_does_not_learn_of_the_case_by_trying() -> None:
    memory = registry()
    await opened(memory)
    with pytest.raises(NotAParty) as refused:
        await send(memory, EMMEN_OFFICE, ArrivalRegistered(municipality=LUCERNE, registered_on=TODAY))
    assert LUCERNE_OFFICE.partner_id not in str(refused.value)
    assert ARRIVED in str(refused.value)
    assert REJECTED not in str(refused.value)


async def test_a_completed_case_is_counted_with_its_latency_once_committed() -> None:
    memory = registry()
    await opened(memory)
    await send(memory, KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY))
    await send(memory, TAX_OFFICE, TaxRecordUpdated(updated_on=TODAY))
    assert memory.figures.completed == []
    await send(memory, LUCERNE_OFFICE, ArrivalRegistered(municipality=LUCERNE, registered_on=TODAY))
    [(case_type, seconds)] = memory.figures.completed
    assert case_type == "relocation"
    assert 0 <= seconds < 60


async def test_figures_of_work_that_rolled_back_are_not_counted() -> None:
    memory = registry()

    async def counts_then_fails(uow: UnitOfWork) -> None:
        uow.figures.case_completed("relocation", 1.0)
        uow.figures.case_escalated("relocation")
        raise RuntimeError("the transaction rolls back")

    with pytest.raises(RuntimeError):
        await memory.transactional(RecordingEmitter(source=REGISTRY_SOURCE))(counts_then_fails)
    assert (memory.figures.completed, memory.figures.escalated) == ([], [])
