"""What the notifications service does with a request: render it and queue it.

Sending happens in the dispatcher, outside the consumer's transaction: a slow or down
mail server must neither block the partition nor roll back the acceptance.
"""

from __future__ import annotations

from contracts import NotificationRequested
from hub.errors import PermanentError
from hub.messages import Incoming, Transaction
from hub.telemetry import current_trace_headers
from services.notifications import repository as repo
from services.notifications.templates import UnknownTemplate, render


async def accept_notification(msg: Incoming[NotificationRequested], tx: Transaction) -> None:
    request = msg.data
    try:
        message = render(request.template, request.language, dict(request.placeholders))
    except (UnknownTemplate, KeyError) as error:
        raise PermanentError(f"cannot render {request.template}: {error}") from error
    trace = current_trace_headers()
    await repo.insert_notification(
        tx,
        notification_id=request.notification_id,
        case_id=msg.case_id,
        channel=request.channel.value,
        recipient=request.recipient,
        message=message,
        test_delivery=msg.envelope.testdelivery,
        traceparent=trace.get("traceparent"),
        tracestate=trace.get("tracestate"),
    )
