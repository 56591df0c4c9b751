"""What the registry does with each event. Plain functions: event and unit of work in.

Every partner event is checked against the catalogue (known type, the sender's role may
publish it) before it touches a case. An opening event opens a case of the process
that names it and resolves the case's parties (``services/registry/parties.py``); the
registry asks identity for the recipients' sector pseudonyms and delivers, minimised, to
each approved subscription of a party (or one that spans all cases). Milestones,
rejections and requests to the citizen are accepted only from the party whose slot the
definition names for them (``NotAParty`` otherwise, before anything changes); completion
follows the process definition. The case aggregate (``case_domain.Case``) decides each of
these; a handler loads it, asks it, stores what changed and emits. Each step lands on the
case's timeline with the trace id it ran under.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypedDict

from contracts import (
    CaseActionRequired,
    CaseCompleted,
    CaseRejected,
    Contract,
    NotificationStatusChanged,
    Person,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
    Sector,
)
from hub.errors import PermanentError, UnknownCase
from hub.runtime import topics
from hub.runtime.messages import Incoming
from hub.runtime.telemetry import current_trace_headers
from services.registry.case_domain import Case, check_may_open, check_may_publish, check_sender
from services.registry.citizen import notify_citizen
from services.registry.delivery import deliver
from services.registry.domain import Milestone, ProcessDefinition, Processes, get_path
from services.registry.errors import CaseExists, NotAuthorized
from services.registry.model import (
    NewCase,
    Partner,
    PendingDelivery,
    Subscriber,
    TimelineStep,
    claimed_partner,
)
from services.registry.parties import recipients, resolve
from services.registry.partner_keys import IngressPolicy, verify_partner_event
from services.registry.ports import UnitOfWork


class Notice(TypedDict, total=False):
    """What a step fills into the citizen's notice (``notify_citizen``'s placeholders)."""

    milestone: str
    reason: str
    partner: str
    action: str
    due_on: str


async def sender(uow: UnitOfWork, msg: Incoming[Any], *, policy: IngressPolicy) -> Partner:
    """The publishing partner, if known, active, the signer of the event (with a valid key,
    recently) and allowed by the catalogue to publish this type.

    An unknown or suspended sender is refused before the signature is looked at: refusing
    on an unproven claim is safe. Nothing is accepted before the signature is checked.
    """
    source = msg.envelope.source
    partner_id = claimed_partner(source)
    if partner_id is None:
        raise NotAuthorized(f"event source {source!r} is not a partner")
    partner = check_sender(await uow.partners.get(partner_id), partner_id)
    await verify_partner_event(uow, msg, partner.partner_id, policy)
    check_may_publish(partner, await uow.catalogue.entry(msg.envelope.type), msg.envelope.type)
    return partner


async def on_partner_event(
    msg: Incoming[Contract],
    uow: UnitOfWork,
    *,
    processes: Processes,
    policy: IngressPolicy,
    ops_email: str,
) -> None:
    partner = await sender(uow, msg, policy=policy)
    process = processes.by_opening.get(msg.envelope.type)
    if process is not None:
        check_may_open(partner, process)
        await open_case(msg, uow, process=process, partner=partner, ops_email=ops_email)
        return
    case = await _case(uow, msg.case_id, for_update=True)
    process = processes[case.case_type]
    if isinstance(msg.data, CaseRejected):
        await reject_case(msg, uow, process=process, case=case, partner=partner)
    elif isinstance(msg.data, CaseActionRequired):
        await request_action(msg, uow, process=process, case=case, partner=partner)
    elif process.milestones_of_type(msg.envelope.type):
        reached = case.milestones_of(process, msg.envelope.type, partner.partner_id)
        await reach_milestones(msg, uow, process=process, case=case, partner=partner, reached=reached)
    else:
        raise PermanentError(f"{msg.envelope.type} is not part of a {case.case_type} case")


async def open_case(
    msg: Incoming[Contract],
    uow: UnitOfWork,
    *,
    process: ProcessDefinition,
    partner: Partner,
    ops_email: str,
) -> None:
    data = msg.data.model_dump(mode="json")
    vn = None
    if process.subject_person:
        # The AHVN13 goes to identity and nowhere else; the registry never stores it (it only
        # finds the person's data key with it, see hub/vault).
        vn = get_path(data, process.subject_person).pop("vn", None)
    created = await uow.cases.add(
        NewCase(
            case_id=msg.case_id,
            case_type=process.case_type,
            trace_id=msg.trace_id,
            traceparent=current_trace_headers().get("traceparent"),
            test_delivery=msg.envelope.testdelivery,
            reported_event_id=msg.envelope.id,
            details=data,
            deadline_s=process.deadline_s,
            details_type=msg.envelope.type,
            subject_vn=vn,
        )
    )
    if not created:
        raise CaseExists(f"case {msg.case_id} already exists; a new case needs a new business process id")
    case = await _case(uow, msg.case_id)
    await _timeline(uow, msg, partner.partner_id, process.title)
    parties = await resolve(
        uow,
        process=process,
        case=case,
        opener=partner,
        trace_id=msg.trace_id,
        event_id=msg.envelope.id,
        ops_email=ops_email,
    )
    subscribers = await recipients(uow, msg.envelope.type, case)
    tells_citizen = process.citizen_contact is not None
    if process.subject_person and (subscribers or tells_citizen):
        person = getattr(msg.data, process.subject_person)
        assert isinstance(person, Person)
        # The citizen is told of receipt once identity has answered, with their citizen id,
        # so that their channel preference and inbox apply from the first notice on.
        request = await uow.emitter.emit(
            PseudonymsRequested(
                person=person,
                recipients=tuple(
                    Recipient(partner_id=s.partner_id, sector=Sector(s.sector)) for s in subscribers
                ),
                citizen_pseudonym=tells_citizen,
            ),
            topic=topics.IDENTITY_REQUESTS,
            business_process_id=case.case_id,
            reference_id=msg.envelope.id,
            test_delivery=case.test_delivery,
        )
        await uow.pending.add(
            PendingDelivery(request.id, case.case_id, msg.envelope.id, msg.envelope.type, data)
        )
    else:
        await deliver(
            uow,
            case=case,
            event_type=msg.envelope.type,
            data=data,
            subscribers=subscribers,
            trace_id=msg.trace_id,
            reference_id=msg.envelope.id,
        )
        await notify_citizen(
            uow,
            process=process,
            case_id=case.case_id,
            details=data,
            step="received",
            test_delivery=case.test_delivery,
        )
    await uow.timeline.add(
        TimelineStep(
            case_id=case.case_id,
            service="registry",
            event_type="case-opened",
            event_id=msg.envelope.id,
            trace_id=msg.trace_id,
            detail=f"{process.case_type}, {len(subscribers)} recipients, "
            f"{sum(p.filled for p in parties)} of {len(parties)} party slots filled",
        )
    )


async def deliver_with_pseudonyms(
    msg: Incoming[PseudonymsIssued], uow: UnitOfWork, *, processes: Processes
) -> None:
    case = await _case(uow, msg.case_id)
    await _timeline(uow, msg, "identity", f"person match: {msg.data.match}")
    pending = await uow.pending.take(msg.envelope.referenceid or "")
    if pending is None:
        return  # already delivered (a redelivered answer)
    process = processes[case.case_type]
    # Subscriptions are read again: one revoked since the request gets nothing.
    subscribers = await recipients(uow, pending.event_type, case)
    pseudonyms = {issued.partner_id: issued for issued in msg.data.pseudonyms}
    await deliver(
        uow,
        case=case,
        event_type=pending.event_type,
        data=pending.data,
        subscribers=subscribers,
        person_path=process.subject_person,
        pseudonyms=pseudonyms,
        trace_id=msg.trace_id,
        reference_id=pending.event_id,
        # The case gets its citizen id below, in this unit of work: the audit record needs it now.
        citizen_id=msg.data.citizen_id,
    )
    status_changed = case.identified(msg.data.citizen_id)
    if msg.data.citizen_id is not None:
        await uow.cases.set_citizen_id(case.case_id, msg.data.citizen_id)
    if pending.event_type == process.opened_by.event_type:
        await notify_citizen(
            uow,
            process=process,
            case_id=case.case_id,
            details=case.details,
            step="received",
            test_delivery=case.test_delivery,
            citizen_id=msg.data.citizen_id,
        )
    if status_changed:
        await uow.cases.set_status(case.case_id, case.status)


async def reach_milestones(
    msg: Incoming[Contract],
    uow: UnitOfWork,
    *,
    process: ProcessDefinition,
    case: Case,
    partner: Partner,
    reached: tuple[Milestone, ...],
) -> None:
    """The milestones the sender's slots reach with this event; the case completes once
    every milestone of a slot that applies to it is reached."""
    status_changed = case.reach(process, reached)
    subscribers = await recipients(uow, msg.envelope.type, case)
    for milestone in reached:
        await uow.cases.add_milestone(case.case_id, milestone.name, partner.partner_id, msg.envelope.id)
        await _partner_step(
            uow,
            msg,
            process=process,
            case=case,
            partner=partner,
            detail=milestone.name,
            # One event, delivered once, however many milestones it reaches.
            subscribers=subscribers if milestone is reached[0] else None,
            step=milestone.name,
            notice={"milestone": milestone.name.replace("-", " ")},
        )
    if status_changed:
        await uow.cases.set_status(case.case_id, case.status)
    if case.completed:
        await _complete(msg, uow, process=process, case=case)


async def _complete(msg: Incoming[Any], uow: UnitOfWork, *, process: ProcessDefinition, case: Case) -> None:
    completed = CaseCompleted(
        case_type=case.case_type,
        completed_at=dt.datetime.now(dt.UTC),
        milestones=tuple(sorted(case.milestones)),
    )
    if (latency := case.age_s(completed.completed_at)) is not None:
        uow.figures.case_completed(case.case_type, latency)
    await _pass_on(
        uow,
        msg,
        process=process,
        case=case,
        event_type=CaseCompleted.event_type,
        data=completed.model_dump(mode="json"),
        subscribers=await recipients(uow, CaseCompleted.event_type, case),
        reference_id=case.reported_event_id,
        step="completed",
    )
    await uow.timeline.add(
        TimelineStep(
            case_id=case.case_id,
            service="registry",
            event_type=CaseCompleted.event_type,
            event_id=msg.envelope.id,
            trace_id=msg.trace_id,
            detail="all milestones reached",
        )
    )


async def reject_case(
    msg: Incoming[Contract], uow: UnitOfWork, *, process: ProcessDefinition, case: Case, partner: Partner
) -> None:
    assert isinstance(msg.data, CaseRejected)
    case.reject(process, partner.partner_id)
    await uow.cases.set_status(case.case_id, case.status)
    # The rejecting partner knows already; the others and the citizen learn why.
    await _partner_step(
        uow,
        msg,
        process=process,
        case=case,
        partner=partner,
        detail="rejected",
        confidential=msg.data.reason,
        subscribers=[
            s for s in await recipients(uow, msg.envelope.type, case) if s.partner_id != partner.partner_id
        ],
        step="rejected",
        notice={"reason": msg.data.reason},
    )


async def request_action(
    msg: Incoming[Contract], uow: UnitOfWork, *, process: ProcessDefinition, case: Case, partner: Partner
) -> None:
    """A party working on the case needs the citizen to act; the case stays open."""
    assert isinstance(msg.data, CaseActionRequired)
    case.check_may_ask_citizen(process, partner.partner_id)
    # A request to the citizen, not news for the subscribers: nothing is delivered.
    await _partner_step(
        uow,
        msg,
        process=process,
        case=case,
        partner=partner,
        detail="action required",
        confidential=msg.data.action,
        subscribers=None,
        step="action-required",
        notice={"action": msg.data.action, "due_on": msg.data.due_on.isoformat() if msg.data.due_on else ""},
    )


async def record_notification_status(msg: Incoming[NotificationStatusChanged], uow: UnitOfWork) -> None:
    if not await uow.cases.exists(msg.case_id):
        return  # notifications outside cases (e.g. operations mail) have no timeline
    await _timeline(
        uow, msg, "notifications", f"{msg.data.template} via {msg.data.channel}: {msg.data.status}"
    )


async def _partner_step(
    uow: UnitOfWork,
    msg: Incoming[Contract],
    *,
    process: ProcessDefinition,
    case: Case,
    partner: Partner,
    detail: str,
    subscribers: list[Subscriber] | None,
    step: str,
    notice: Notice,
    confidential: str | None = None,
) -> None:
    """A partner's step on an open case: on the timeline under the partner, the partner's
    event passed on to ``subscribers`` and the citizen told, naming the partner."""
    await _timeline(uow, msg, partner.partner_id, detail, confidential=confidential)
    await _pass_on(
        uow,
        msg,
        process=process,
        case=case,
        event_type=msg.envelope.type,
        data=msg.data.model_dump(mode="json"),
        subscribers=subscribers,
        reference_id=msg.envelope.id,
        step=step,
        notice={**notice, "partner": partner.name},
    )


async def _pass_on(
    uow: UnitOfWork,
    msg: Incoming[Any],
    *,
    process: ProcessDefinition,
    case: Case,
    event_type: str,
    data: dict[str, Any],
    subscribers: list[Subscriber] | None,
    reference_id: str,
    step: str,
    notice: Notice | None = None,
) -> None:
    """Deliver ``data`` to ``subscribers`` (``None``: a step no subscriber hears of, so
    not even the audit log's "unrouted" record), then tell the citizen of ``step`` with
    the notice's placeholders. Steps after the opening only: the case has its citizen id."""
    if subscribers is not None:
        await deliver(
            uow,
            case=case,
            event_type=event_type,
            data=data,
            subscribers=subscribers,
            trace_id=msg.trace_id,
            reference_id=reference_id,
        )
    await notify_citizen(
        uow,
        process=process,
        case_id=case.case_id,
        details=case.details,
        step=step,
        test_delivery=case.test_delivery,
        citizen_id=case.citizen_id,
        **(notice or {}),
    )


async def _timeline(
    uow: UnitOfWork, msg: Incoming[Any], service: str, detail: str, *, confidential: str | None = None
) -> None:
    """``detail`` is stored in clear; ``confidential`` (what a partner wrote about the
    person) is sealed under the case's data key."""
    await uow.timeline.add(
        TimelineStep(
            case_id=msg.case_id,
            service=service,
            event_type=msg.envelope.type,
            event_id=msg.envelope.id,
            trace_id=msg.trace_id,
            detail=detail,
            confidential=confidential,
        )
    )


async def _case(uow: UnitOfWork, case_id: str, *, for_update: bool = False) -> Case:
    case = await uow.cases.get(case_id, for_update=for_update)
    if case is None:
        raise UnknownCase(f"no case with business process id {case_id}")
    return case
