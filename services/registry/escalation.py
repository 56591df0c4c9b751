"""Deadlines: a case whose deadline passes with milestones missing is escalated.

The operations team is told twice over: a ``CaseEscalated`` event on ``hub.ops`` and to
subscribed partners, and an email. The escalation runs in the case's own trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from contracts import CaseEscalated, Language, NotificationRequested
from hub.runtime import topics
from hub.runtime.outbox import Transaction
from hub.runtime.telemetry import context_from_traceparent, current_trace_id, tracer
from services.registry import party_repository as party_repo
from services.registry import repository as repo
from services.registry.delivery import deliver
from services.registry.domain import CaseStatus, Processes
from services.registry.parties import recipients
from services.registry.parties_domain import required_milestones

log = logging.getLogger(__name__)


class Escalator:
    def __init__(
        self, pool: asyncpg.Pool, processes: Processes, *, source: str, ops_email: str, interval_s: float
    ) -> None:
        self._pool, self._processes, self._source = pool, processes, source
        self._ops_email, self._interval_s = ops_email, interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.escalate_overdue()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("deadline check failed, retrying: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def escalate_overdue(self, limit: int = 100) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            tx = Transaction(conn, source=self._source)
            overdue = await repo.claim_overdue(tx, limit)
            for case, traceparent in overdue:
                with tracer().start_as_current_span(
                    "escalate case",
                    context=context_from_traceparent(traceparent, None),
                    attributes={"hub.case_id": case.case_id, "hub.case_type": case.case_type},
                ):
                    await self._escalate(tx, case)
        return len(overdue)

    async def _escalate(self, tx: Transaction, case: repo.Case) -> None:
        process = self._processes[case.case_type]
        parties = await party_repo.parties_of(tx, case.case_id)
        reached = await repo.reached_milestones(tx, case.case_id)
        missing = tuple(sorted(required_milestones(process, parties) - reached))
        assert case.deadline_at is not None
        escalated = CaseEscalated(
            case_type=case.case_type, deadline=case.deadline_at, missing_milestones=missing
        )
        await repo.set_status(tx, case.case_id, CaseStatus.ESCALATED)
        envelope = await tx.emit(
            escalated, topic=topics.OPS, business_process_id=case.case_id, test_delivery=case.test_delivery
        )
        trace_id = current_trace_id()
        # Operations receive it under an all-cases subscription; a party only if it subscribed.
        subscribers = await recipients(tx, CaseEscalated.event_type, case, parties)
        await deliver(
            tx,
            case=case,
            event_type=CaseEscalated.event_type,
            data=escalated.model_dump(mode="json"),
            subscribers=subscribers,
            trace_id=trace_id,
            reference_id=case.reported_event_id,
        )
        await tx.emit(
            NotificationRequested(
                notification_id=f"{case.case_id}:escalated",
                recipient=self._ops_email,
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
        await repo.add_timeline(
            tx,
            case_id=case.case_id,
            service="registry",
            event_type=envelope.type,
            event_id=envelope.id,
            trace_id=trace_id,
            detail=f"deadline passed; missing: {', '.join(missing) or 'none'}",
        )
