"""What the registry does with each event. Plain functions: event and transaction in.

Every partner event is checked against the catalogue (known type, the sender's role may
publish it) before it touches a case. An opening event opens a case of the process
that names it and resolves the case's parties (``services/registry/parties.py``); the
registry asks identity for the recipients' sector pseudonyms and delivers, minimised, to
each approved subscription of a party (or one that spans all cases). Milestones,
rejections and requests to the citizen are accepted only from the party whose slot the
definition names for them (``NotAParty`` otherwise, before anything changes); completion
follows the process definition; each step lands on the case's timeline with the trace id
it ran under.
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
from hub.runtime.outbox import Transaction
from hub.runtime.telemetry import current_trace_headers
from services.registry import party_repository as party_repo
from services.registry import repository as repo
from services.registry.citizen import notify_citizen
from services.registry.delivery import deliver
from services.registry.domain import (
    CaseStatus,
    Milestone,
    ProcessDefinition,
    Processes,
    get_path,
    next_status,
)
from services.registry.parties import recipients, resolve
from services.registry.parties_domain import (
    Party,
    may_reject,
    may_request_action,
    milestones_reached,
    not_a_party,
    required_milestones,
)
from services.registry.partner_keys import IngressPolicy, verify_partner_event

PARTNER_SOURCE_PREFIX = "urn:ch:lu:hub:partner:"


class NotAuthorized(PermanentError):
    """The sender may not do this: unknown or suspended partner, or a role without the right."""


class NotAParty(NotAuthorized):
    """The sender has the role, but does not fill the slot of this case that the step needs
    (another municipality's move, the other side of it): the case stays untouched."""


class Notice(TypedDict, total=False):
    """What a step fills into the citizen's notice (``notify_citizen``'s placeholders)."""

    milestone: str
    reason: str
    partner: str
    action: str
    due_on: str


async def sender(tx: Transaction, msg: Incoming[Any], *, policy: IngressPolicy) -> repo.Partner:
    """The publishing partner, if known, active, the signer of the event (with a valid key,
    recently) and allowed by the catalogue to publish this type.

    An unknown or suspended sender is refused before the signature is looked at: refusing
    on an unproven claim is safe. Nothing is accepted before the signature is checked.
    """
    source = msg.envelope.source
    if not source.startswith(PARTNER_SOURCE_PREFIX):
        raise NotAuthorized(f"event source {source!r} is not a partner")
    partner = await repo.partner(tx, source.removeprefix(PARTNER_SOURCE_PREFIX))
    if partner is None:
        raise NotAuthorized(f"unknown partner {source.removeprefix(PARTNER_SOURCE_PREFIX)}")
    if partner.status != "active":
        raise NotAuthorized(f"partner {partner.partner_id} is {partner.status}")
    await verify_partner_event(tx, msg, partner.partner_id, policy)
    entry = await repo.catalog_entry(tx, msg.envelope.type)
    if entry is None:
        raise NotAuthorized(f"{msg.envelope.type} is not in the catalogue")
    if not set(partner.roles) & set(entry.publisher_roles):
        raise NotAuthorized(
            f"{partner.partner_id} (roles {', '.join(partner.roles)}) may not publish {entry.event_type}"
        )
    return partner


async def on_partner_event(
    msg: Incoming[Contract],
    tx: Transaction,
    *,
    processes: Processes,
    policy: IngressPolicy,
    ops_email: str,
) -> None:
    partner = await sender(tx, msg, policy=policy)
    process = processes.by_opening.get(msg.envelope.type)
    if process is not None:
        # Opening is a matter of role: the portal opens moves whatever the municipalities.
        if partner.roles and process.opened_by.role not in partner.roles:
            raise NotAuthorized(f"{partner.partner_id} may not open a {process.case_type} case")
        await open_case(msg, tx, process=process, partner=partner, ops_email=ops_email)
        return
    case = await _case(tx, msg.case_id, for_update=True)
    process = processes[case.case_type]
    parties = await party_repo.parties_of(tx, case.case_id)
    if isinstance(msg.data, CaseRejected):
        await reject_case(msg, tx, process=process, case=case, partner=partner, parties=parties)
    elif isinstance(msg.data, CaseActionRequired):
        await request_action(msg, tx, process=process, case=case, partner=partner, parties=parties)
    elif process.milestones_of_type(msg.envelope.type):
        reached = milestones_reached(process, parties, msg.envelope.type, partner.partner_id)
        if not reached:
            slots = [m.slot for m in process.milestones_of_type(msg.envelope.type)]
            raise NotAParty(not_a_party(partner.partner_id, case.case_type, slots, msg.envelope.type))
        await reach_milestones(
            msg, tx, process=process, case=case, partner=partner, reached=reached, parties=parties
        )
    else:
        raise PermanentError(f"{msg.envelope.type} is not part of a {case.case_type} case")


async def open_case(
    msg: Incoming[Contract],
    tx: Transaction,
    *,
    process: ProcessDefinition,
    partner: repo.Partner,
    ops_email: str,
) -> None:
    data = msg.data.model_dump(mode="json")
    vn = None
    if process.subject_person:
        # The AHVN13 goes to identity and nowhere else; the registry never stores it (it only
        # finds the person's data key with it, see hub/vault.py).
        vn = get_path(data, process.subject_person).pop("vn", None)
    created = await repo.insert_case(
        tx,
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
    if not created:
        raise PermanentError(f"case {msg.case_id} already exists; a new case needs a new business process id")
    case = await _case(tx, msg.case_id)
    await _timeline(tx, msg, partner.partner_id, process.title)
    parties = await resolve(
        tx,
        process=process,
        case=case,
        opener=partner,
        trace_id=msg.trace_id,
        event_id=msg.envelope.id,
        ops_email=ops_email,
    )
    subscribers = await recipients(tx, msg.envelope.type, case, parties)
    tells_citizen = process.citizen_contact is not None
    if process.subject_person and (subscribers or tells_citizen):
        person = getattr(msg.data, process.subject_person)
        assert isinstance(person, Person)
        # The citizen is told of receipt once identity has answered, with their citizen id,
        # so that their channel preference and inbox apply from the first notice on.
        request = await tx.emit(
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
        await repo.add_pending(tx, request.id, case.case_id, msg.envelope.id, msg.envelope.type, data)
    else:
        await deliver(
            tx,
            case=case,
            event_type=msg.envelope.type,
            data=data,
            subscribers=subscribers,
            trace_id=msg.trace_id,
            reference_id=msg.envelope.id,
        )
        await notify_citizen(
            tx,
            process=process,
            case_id=case.case_id,
            details=data,
            step="received",
            test_delivery=case.test_delivery,
        )
    await repo.add_timeline(
        tx,
        case_id=case.case_id,
        service="registry",
        event_type="case-opened",
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail=f"{process.case_type}, {len(subscribers)} recipients, "
        f"{sum(p.filled for p in parties)} of {len(parties)} party slots filled",
    )


async def deliver_with_pseudonyms(
    msg: Incoming[PseudonymsIssued], tx: Transaction, *, processes: Processes
) -> None:
    case = await _case(tx, msg.case_id)
    await _timeline(tx, msg, "identity", f"person match: {msg.data.match}")
    pending = await repo.take_pending(tx, msg.envelope.referenceid or "")
    if pending is None:
        return  # already delivered (a redelivered answer)
    event_id, event_type, data = pending
    process = processes[case.case_type]
    # Subscriptions are read again: one revoked since the request gets nothing.
    subscribers = await recipients(tx, event_type, case)
    pseudonyms = {issued.partner_id: issued for issued in msg.data.pseudonyms}
    await deliver(
        tx,
        case=case,
        event_type=event_type,
        data=data,
        subscribers=subscribers,
        person_path=process.subject_person,
        pseudonyms=pseudonyms,
        trace_id=msg.trace_id,
        reference_id=event_id,
        # The case gets its citizen id below, in this transaction: the audit record needs it now.
        citizen_id=msg.data.citizen_id,
    )
    if msg.data.citizen_id is not None:
        await repo.set_citizen_id(tx, case.case_id, msg.data.citizen_id)
    if event_type == process.opened_by.event_type:
        await notify_citizen(
            tx,
            process=process,
            case_id=case.case_id,
            details=case.details,
            step="received",
            test_delivery=case.test_delivery,
            citizen_id=msg.data.citizen_id,
        )
    if case.status is CaseStatus.OPENED:
        await repo.set_status(tx, case.case_id, CaseStatus.IN_PROGRESS)


async def reach_milestones(
    msg: Incoming[Contract],
    tx: Transaction,
    *,
    process: ProcessDefinition,
    case: repo.Case,
    partner: repo.Partner,
    reached: tuple[Milestone, ...],
    parties: tuple[Party, ...],
) -> None:
    """The milestones the sender's slots reach with this event (one, unless it fills two
    slots whose milestones share the type); the case completes once every milestone of a
    slot that applies to it is reached."""
    if case.status in (CaseStatus.COMPLETED, CaseStatus.REJECTED):
        raise PermanentError(f"case {case.case_id} is already {case.status}")
    subscribers = await recipients(tx, msg.envelope.type, case, parties)
    for milestone in reached:
        await repo.add_milestone(tx, case.case_id, milestone.name, partner.partner_id, msg.envelope.id)
        await _partner_step(
            tx,
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
    done = await repo.reached_milestones(tx, case.case_id)
    status = next_status(required_milestones(process, parties), case.status, done)
    if status is not case.status:
        await repo.set_status(tx, case.case_id, status)
    if status is CaseStatus.COMPLETED:
        await _complete(msg, tx, process=process, case=case, reached=done)


async def _complete(
    msg: Incoming[Any],
    tx: Transaction,
    *,
    process: ProcessDefinition,
    case: repo.Case,
    reached: frozenset[str],
) -> None:
    completed = CaseCompleted(
        case_type=case.case_type, completed_at=dt.datetime.now(dt.UTC), milestones=tuple(sorted(reached))
    )
    await _pass_on(
        tx,
        msg,
        process=process,
        case=case,
        event_type=CaseCompleted.event_type,
        data=completed.model_dump(mode="json"),
        subscribers=await recipients(tx, CaseCompleted.event_type, case),
        reference_id=case.reported_event_id,
        step="completed",
    )
    await repo.add_timeline(
        tx,
        case_id=case.case_id,
        service="registry",
        event_type=CaseCompleted.event_type,
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail="all milestones reached",
    )


async def reject_case(
    msg: Incoming[Contract],
    tx: Transaction,
    *,
    process: ProcessDefinition,
    case: repo.Case,
    partner: repo.Partner,
    parties: tuple[Party, ...],
) -> None:
    assert isinstance(msg.data, CaseRejected)
    if not may_reject(process, parties, partner.partner_id):
        slots = process.rejection_slots
        raise NotAParty(not_a_party(partner.partner_id, case.case_type, slots, "a rejection"))
    if case.status in (CaseStatus.COMPLETED, CaseStatus.REJECTED):
        raise PermanentError(f"case {case.case_id} is already {case.status}")
    await repo.set_status(tx, case.case_id, CaseStatus.REJECTED)
    # The rejecting partner knows already; the others and the citizen learn why.
    await _partner_step(
        tx,
        msg,
        process=process,
        case=case,
        partner=partner,
        detail="rejected",
        confidential=msg.data.reason,
        subscribers=[
            s
            for s in await recipients(tx, msg.envelope.type, case, parties)
            if s.partner_id != partner.partner_id
        ],
        step="rejected",
        notice={"reason": msg.data.reason},
    )


async def request_action(
    msg: Incoming[Contract],
    tx: Transaction,
    *,
    process: ProcessDefinition,
    case: repo.Case,
    partner: repo.Partner,
    parties: tuple[Party, ...],
) -> None:
    """A party working on the case needs the citizen to act; the case stays open."""
    assert isinstance(msg.data, CaseActionRequired)
    if not may_request_action(process, parties, partner.partner_id):
        slots = process.working_slots
        raise NotAParty(not_a_party(partner.partner_id, case.case_type, slots, "a request to the citizen"))
    if case.status in (CaseStatus.COMPLETED, CaseStatus.REJECTED):
        raise PermanentError(f"case {case.case_id} is already {case.status}")
    # A request to the citizen, not news for the subscribers: nothing is delivered.
    await _partner_step(
        tx,
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


async def record_notification_status(msg: Incoming[NotificationStatusChanged], tx: Transaction) -> None:
    if await repo.load_case(tx, msg.case_id) is None:
        return  # notifications outside cases (e.g. operations mail) have no timeline
    await _timeline(
        tx, msg, "notifications", f"{msg.data.template} via {msg.data.channel}: {msg.data.status}"
    )


async def _partner_step(
    tx: Transaction,
    msg: Incoming[Contract],
    *,
    process: ProcessDefinition,
    case: repo.Case,
    partner: repo.Partner,
    detail: str,
    subscribers: list[repo.Subscriber] | None,
    step: str,
    notice: Notice,
    confidential: str | None = None,
) -> None:
    """A partner's step on an open case: on the timeline under the partner, the partner's
    event passed on to ``subscribers`` and the citizen told, naming the partner."""
    await _timeline(tx, msg, partner.partner_id, detail, confidential=confidential)
    await _pass_on(
        tx,
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
    tx: Transaction,
    msg: Incoming[Any],
    *,
    process: ProcessDefinition,
    case: repo.Case,
    event_type: str,
    data: dict[str, Any],
    subscribers: list[repo.Subscriber] | None,
    reference_id: str,
    step: str,
    notice: Notice | None = None,
) -> None:
    """Deliver ``data`` to ``subscribers`` (``None``: a step no subscriber hears of, so
    not even the audit log's "unrouted" record), then tell the citizen of ``step`` with
    the notice's placeholders. Steps after the opening only: the case has its citizen id."""
    if subscribers is not None:
        await deliver(
            tx,
            case=case,
            event_type=event_type,
            data=data,
            subscribers=subscribers,
            trace_id=msg.trace_id,
            reference_id=reference_id,
        )
    await notify_citizen(
        tx,
        process=process,
        case_id=case.case_id,
        details=case.details,
        step=step,
        test_delivery=case.test_delivery,
        citizen_id=case.citizen_id,
        **(notice or {}),
    )


async def _timeline(
    tx: Transaction, msg: Incoming[Any], service: str, detail: str, *, confidential: str | None = None
) -> None:
    """``detail`` is stored in clear; ``confidential`` (what a partner wrote about the
    person) is sealed under the case's data key (``repo.add_timeline``)."""
    await repo.add_timeline(
        tx,
        case_id=msg.case_id,
        service=service,
        event_type=msg.envelope.type,
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail=detail,
        confidential=confidential,
    )


async def _case(tx: Transaction, case_id: str, *, for_update: bool = False) -> repo.Case:
    case = await repo.load_case(tx, case_id, for_update=for_update)
    if case is None:
        raise UnknownCase(f"no case with business process id {case_id}")
    return case
