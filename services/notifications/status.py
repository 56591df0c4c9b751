"""Recording status changes: the notices, their history, and the status events in one unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import context as otel_context

from contracts import Channel, DeliveryStatus, NotificationStatusChanged
from hub.runtime import topics
from services.notifications.domain import Outcome
from services.notifications.ports import UnitOfWork


@dataclass(frozen=True)
class StatusChange:
    """An outcome, with what its status event says of the notice."""

    outcome: Outcome
    channel: str
    template: str
    case_id: str
    test_delivery: bool
    # The trace the event continues (the attempt's span) when it is recorded elsewhere, as
    # the dispatcher records several attempts' outcomes together; None: the current one.
    trace: otel_context.Context | None = None


async def record_status(
    uow: UnitOfWork,
    *,
    notification_id: str,
    channel: str,
    template: str,
    case_id: str,
    test_delivery: bool,
    status: DeliveryStatus,
    detail: str | None,
    retry_in_s: float | None = None,
) -> None:
    outcome = Outcome(notification_id, status, detail, retry_in_s)
    await record_statuses(uow, [StatusChange(outcome, channel, template, case_id, test_delivery)])


async def record_statuses(uow: UnitOfWork, changes: Sequence[StatusChange]) -> None:
    await uow.notifications.finish_all([change.outcome for change in changes])
    for change in changes:
        token = otel_context.attach(change.trace) if change.trace is not None else None
        try:
            await _emit(uow, change)
        finally:
            if token is not None:
                otel_context.detach(token)


async def _emit(uow: UnitOfWork, change: StatusChange) -> None:
    outcome = change.outcome
    # Through the emitter: published only if the status change commits.
    await uow.emitter.emit(
        NotificationStatusChanged(
            notification_id=outcome.notification_id,
            channel=Channel(change.channel),
            status=outcome.status,
            template=change.template,
            detail=outcome.detail[:1000] if outcome.detail else None,
        ),
        topic=topics.NOTIFICATION_STATUS,
        business_process_id=change.case_id,
        test_delivery=change.test_delivery,
    )
