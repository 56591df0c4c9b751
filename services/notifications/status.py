"""Recording a status change: the notice, its history, and the status event in one unit of work."""

from __future__ import annotations

from contracts import Channel, DeliveryStatus, NotificationStatusChanged
from hub.runtime import topics
from services.notifications.ports import UnitOfWork


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
    await uow.notifications.finish(notification_id, status, detail=detail, retry_in_s=retry_in_s)
    # Through the emitter: published only if the status change commits.
    await uow.emitter.emit(
        NotificationStatusChanged(
            notification_id=notification_id,
            channel=Channel(channel),
            status=status,
            template=template,
            detail=detail[:1000] if detail else None,
        ),
        topic=topics.NOTIFICATION_STATUS,
        business_process_id=case_id,
        test_delivery=test_delivery,
    )
