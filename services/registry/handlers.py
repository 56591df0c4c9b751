"""What the registry does with each event. Plain functions: event and transaction in.

The registry opens a case for a reported move, asks identity for the recipients'
sector pseudonyms, delivers to each subscribed partner on its own topic, records the
partners' milestones and closes the case when all have arrived. Every step lands on
the case's timeline with the trace id it ran under.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from contracts import (
    CaseCompleted,
    Contract,
    IssuedPseudonym,
    MoveReported,
    MoveReportedDelivery,
    NotificationRequested,
    NotificationStatusChanged,
    PseudonymizedPerson,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
    Sector,
)
from hub import topics
from hub.errors import PermanentError, UnknownCase
from hub.messages import Incoming, Transaction
from services.registry import repository as repo
from services.registry.domain import PROCESSES, RELOCATION, CaseStatus, milestone_name, next_status

SERVICE = "registry"
PARTNER_SOURCE_PREFIX = "urn:ch:lu:hub:partner:"


def partner_of(source: str) -> str:
    if not source.startswith(PARTNER_SOURCE_PREFIX):
        raise PermanentError(f"event source {source!r} is not a partner")
    return source.removeprefix(PARTNER_SOURCE_PREFIX)


async def open_relocation_case(msg: Incoming[MoveReported], tx: Transaction) -> None:
    move, case_id = msg.data, msg.case_id
    details = move.model_dump(mode="json", exclude={"person": {"vn"}})
    created = await repo.insert_case(
        tx,
        case_id=case_id,
        case_type=RELOCATION.case_type,
        trace_id=msg.trace_id,
        test_delivery=msg.envelope.testdelivery,
        reported_event_id=msg.envelope.id,
        details=details,
    )
    if not created:
        raise PermanentError(f"case {case_id} already exists; a new report needs a new business process id")
    await repo.add_timeline(
        tx,
        case_id=case_id,
        service=partner_of(msg.envelope.source),
        event_type=msg.envelope.type,
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail="move reported",
    )
    recipients = [
        Recipient(partner_id=s.partner_id, sector=Sector(s.sector))
        for s in await repo.subscribers_of(tx, MoveReportedDelivery.event_type)
    ]
    if recipients:
        await tx.emit(
            PseudonymsRequested(person=move.person, recipients=tuple(recipients)),
            topic=topics.IDENTITY_REQUESTS,
            business_process_id=case_id,
            reference_id=msg.envelope.id,
            test_delivery=msg.envelope.testdelivery,
        )
    await _notify_citizen(tx, msg, details, "relocation.received")
    await repo.add_timeline(
        tx,
        case_id=case_id,
        service=SERVICE,
        event_type="case-opened",
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail=f"{len(recipients)} recipients",
    )


async def deliver_to_partners(msg: Incoming[PseudonymsIssued], tx: Transaction) -> None:
    case = await _case(tx, msg.case_id)
    await repo.add_timeline(
        tx,
        case_id=case.case_id,
        service="identity",
        event_type=msg.envelope.type,
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail=f"person match: {msg.data.match}",
    )
    subscribers = {s.partner_id: s for s in await repo.subscribers_of(tx, MoveReportedDelivery.event_type)}
    for issued in msg.data.pseudonyms:
        subscriber = subscribers.get(issued.partner_id)
        if subscriber is None:
            continue  # subscription revoked or partner suspended since the request
        delivery = await tx.emit(
            _move_delivery(case.details, issued),
            topic=subscriber.delivery_topic,
            business_process_id=case.case_id,
            reference_id=case.reported_event_id,
            subject=issued.pseudonym,
            test_delivery=case.test_delivery,
        )
        await repo.add_timeline(
            tx,
            case_id=case.case_id,
            service=SERVICE,
            event_type=delivery.type,
            event_id=delivery.id,
            trace_id=msg.trace_id,
            detail=f"delivered to {issued.partner_id} ({subscriber.legal_basis})",
        )
    await repo.set_status(tx, case.case_id, CaseStatus.IN_PROGRESS)


def _move_delivery(details: dict[str, Any], issued: IssuedPseudonym) -> MoveReportedDelivery:
    person = details["person"]
    return MoveReportedDelivery(
        recipient=issued.partner_id,
        person=PseudonymizedPerson(
            sector_pseudonym=issued.pseudonym,
            local_person_id=issued.local_person_id,
            official_name=person["official_name"],
            first_name=person["first_name"],
            sex=person["sex"],
            date_of_birth=person["date_of_birth"],
        ),
        departure=details["departure"],
        arrival=details["arrival"],
        move_date=details["move_date"],
        previous_address=details["previous_address"],
        new_address=details["new_address"],
    )


async def record_milestone(msg: Incoming[Contract], tx: Transaction) -> None:
    case = await _case(tx, msg.case_id, for_update=True)
    partner = partner_of(msg.envelope.source)
    process = PROCESSES[case.case_type]
    if msg.envelope.type not in process.milestones:
        raise PermanentError(f"{msg.envelope.type} is not a milestone of a {case.case_type} case")
    await repo.add_milestone(tx, case.case_id, msg.envelope.type, partner, msg.envelope.id)
    await repo.add_timeline(
        tx,
        case_id=case.case_id,
        service=partner,
        event_type=msg.envelope.type,
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail=milestone_name(msg.envelope.type),
    )
    reached = await repo.reached_milestones(tx, case.case_id)
    status = next_status(process, case.status, reached)
    if status == case.status:
        return
    await repo.set_status(tx, case.case_id, status)
    if status is CaseStatus.COMPLETED:
        await _complete(tx, msg, case, reached)


async def _complete(
    tx: Transaction, msg: Incoming[Contract], case: repo.Case, reached: frozenset[str]
) -> None:
    completed = CaseCompleted(
        completed_at=dt.datetime.now(dt.UTC), milestones=tuple(sorted(milestone_name(m) for m in reached))
    )
    for subscriber in await repo.subscribers_of(tx, CaseCompleted.event_type):
        await tx.emit(
            completed,
            topic=subscriber.delivery_topic,
            business_process_id=case.case_id,
            reference_id=case.reported_event_id,
            test_delivery=case.test_delivery,
        )
    await _notify_citizen(tx, msg, case.details, "relocation.completed")
    await repo.add_timeline(
        tx,
        case_id=case.case_id,
        service=SERVICE,
        event_type=CaseCompleted.event_type,
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail="all milestones reached",
    )


async def record_notification_status(msg: Incoming[NotificationStatusChanged], tx: Transaction) -> None:
    case = await _case(tx, msg.case_id)
    await repo.add_timeline(
        tx,
        case_id=case.case_id,
        service="notifications",
        event_type=msg.envelope.type,
        event_id=msg.envelope.id,
        trace_id=msg.trace_id,
        detail=f"{msg.data.template} via {msg.data.channel}: {msg.data.status}",
    )


async def _notify_citizen(
    tx: Transaction, msg: Incoming[Any], details: dict[str, Any], template: str
) -> None:
    contact, person = details["contact"], details["person"]
    await tx.emit(
        NotificationRequested(
            notification_id=f"{msg.case_id}:{template}",
            recipient=contact["email"],
            language=contact["language"],
            template=template,
            placeholders={
                "first_name": person["first_name"],
                "official_name": person["official_name"],
                "case_id": msg.case_id,
                "departure": details["departure"]["name"],
                "arrival": details["arrival"]["name"],
                "move_date": details["move_date"],
            },
        ),
        topic=topics.NOTIFICATION_REQUESTS,
        business_process_id=msg.case_id,
        test_delivery=msg.envelope.testdelivery,
    )


async def _case(tx: Transaction, case_id: str, *, for_update: bool = False) -> repo.Case:
    case = await repo.load_case(tx, case_id, for_update=for_update)
    if case is None:
        raise UnknownCase(f"no case with business process id {case_id}")
    return case
