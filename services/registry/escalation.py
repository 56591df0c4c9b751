"""Deadlines: a case whose deadline passes with milestones missing is escalated.

The operations team is told twice over: a ``CaseEscalated`` event on ``hub.ops`` and to
subscribed partners, and an email. The escalation runs in the case's own trace.
``escalate_overdue`` is one step of the worker, in one unit of work; ``Escalator`` repeats
it, each time in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from contracts import CaseEscalated, Language, NotificationRequested
from hub.errors import DatabaseConflict, DatabaseUnavailable
from hub.runtime import topics
from hub.runtime.telemetry import context_from_traceparent, current_trace_id, tracer
from services.registry.case_domain import Case
from services.registry.delivery import deliver
from services.registry.domain import Processes
from services.registry.errors import StorageFailed
from services.registry.model import TimelineStep
from services.registry.parties import recipients
from services.registry.ports import Transactional, UnitOfWork

log = logging.getLogger(__name__)


async def escalate_overdue(uow: UnitOfWork, *, processes: Processes, ops_email: str, limit: int = 100) -> int:
    """Escalate the open cases past their deadline (at most ``limit``); how many."""
    overdue = await uow.cases.claim_overdue(limit)
    for case, traceparent in overdue:
        with tracer().start_as_current_span(
            "escalate case",
            context=context_from_traceparent(traceparent, None),
            attributes={"hub.case_id": case.case_id, "hub.case_type": case.case_type},
        ):
            await escalate(uow, case, processes=processes, ops_email=ops_email)
    return len(overdue)


async def escalate(uow: UnitOfWork, case: Case, *, processes: Processes, ops_email: str) -> None:
    missing = case.escalate(processes[case.case_type])
    assert case.deadline_at is not None
    escalated = CaseEscalated(case_type=case.case_type, deadline=case.deadline_at, missing_milestones=missing)
    await uow.cases.set_status(case.case_id, case.status)
    uow.figures.case_escalated(case.case_type)
    envelope = await uow.emitter.emit(
        escalated, topic=topics.OPS, business_process_id=case.case_id, test_delivery=case.test_delivery
    )
    trace_id = current_trace_id()
    # Operations receive it under an all-cases subscription; a party only if it subscribed.
    await deliver(
        uow,
        case=case,
        event_type=CaseEscalated.event_type,
        data=escalated.model_dump(mode="json"),
        subscribers=await recipients(uow, CaseEscalated.event_type, case),
        trace_id=trace_id,
        reference_id=case.reported_event_id,
    )
    await uow.emitter.emit(
        NotificationRequested(
            notification_id=f"{case.case_id}:escalated",
            recipient=ops_email,
            language=Language.DE,
            template="case.escalated",
            mandatory=True,
            placeholders={
                "case_id": case.case_id,
                "case_type": case.case_type,
                "step": "escalated",
                "milestone": ", ".join(missing),
                "reason": "deadline passed",
                "partner": "",
                "first_name": "",
                "official_name": "",
            },
        ),
        topic=topics.NOTIFICATION_REQUESTS,
        business_process_id=case.case_id,
        test_delivery=case.test_delivery,
    )
    await uow.timeline.add(
        TimelineStep(
            case_id=case.case_id,
            service="registry",
            event_type=envelope.type,
            event_id=envelope.id,
            trace_id=trace_id,
            detail=f"deadline passed; missing: {', '.join(missing) or 'none'}",
        )
    )


class Escalator:
    """Checks the deadlines every ``interval_s``, until stopped; a database outage only delays it."""

    def __init__(
        self, transactional: Transactional, processes: Processes, *, ops_email: str, interval_s: float
    ) -> None:
        self._in_transaction = transactional
        self._step = functools.partial(escalate_overdue, processes=processes, ops_email=ops_email)
        self._interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.escalate_overdue()
            except (DatabaseUnavailable, DatabaseConflict, StorageFailed) as error:
                # The database away or restarting, or a lost race: the next round checks again.
                log.warning("deadline check failed, retrying: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def escalate_overdue(self, limit: int = 100) -> int:
        return await self._in_transaction(functools.partial(self._step, limit=limit))
