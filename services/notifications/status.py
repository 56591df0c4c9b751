"""Recording a status change: the row, its history, and the status event in one transaction."""

from __future__ import annotations

from contracts import Channel, DeliveryStatus, NotificationStatusChanged
from hub.runtime import topics
from hub.runtime.outbox import Transaction
from services.notifications import repository as repo


async def record_status(
    tx: Transaction,
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
    await repo.finish(tx.conn, notification_id, status, detail=detail, retry_in_s=retry_in_s)
    # Through the outbox: published only if the status change commits.
    await tx.emit(
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
