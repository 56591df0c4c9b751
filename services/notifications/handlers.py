"""What the notifications service does with a request or a partner delivery: render, decide, queue.

Sending happens in the dispatcher, outside the consumer's transaction: a slow or down
mail server, SMS provider or webhook must neither block the partition nor roll back the
acceptance.
"""

from __future__ import annotations

from contracts import Channel, Contract, DeliveryStatus, NotificationRequested
from hub.errors import PermanentError
from hub.runtime.messages import Incoming
from hub.runtime.telemetry import current_trace_headers
from services.notifications.domain import (
    NewNotification,
    plan_deliveries,
    structured_cloudevent,
    webhook_notification_id,
)
from services.notifications.ports import UnitOfWork
from services.notifications.status import record_status
from services.notifications.templates import RenderedMessage, UnknownTemplate, render


async def accept_notification(
    msg: Incoming[NotificationRequested], uow: UnitOfWork, *, sms_available: bool = False
) -> None:
    """``sms_available``: whether an SMS provider is configured; else an SMS preference means email."""
    request = msg.data
    try:
        message = render(request.template, request.language, dict(request.placeholders))
    except (UnknownTemplate, KeyError) as error:
        raise PermanentError(f"cannot render {request.template}: {error}") from error
    preference = await uow.preferences.preference_of(request.citizen_id) if request.citizen_id else None
    plan = plan_deliveries(request, preference, sms_available=sms_available)
    trace = current_trace_headers()
    news = [
        NewNotification(
            notification_id=delivery.notification_id,
            case_id=msg.case_id,
            channel=delivery.channel.value,
            recipient=delivery.address,
            template=request.template,
            subject=message.subject,
            body=_text_for(delivery.channel, message),
            test_delivery=msg.envelope.testdelivery,
            traceparent=trace.get("traceparent"),
            tracestate=trace.get("tracestate"),
            language=message.language.value,
            template_version=message.version,
            template_source=message.source,
            citizen_id=request.citizen_id,
            mandatory=request.mandatory,
        )
        for delivery in plan.deliveries
    ]
    # The notice and its inbox copy together: one statement per table, not one per notice.
    added = await uow.notifications.add_all(news)
    if plan.refused is None:
        return
    for new in news:
        if new.notification_id in added:  # not again for a redelivered request
            # Not sent, but recorded and reported, so the case shows why the citizen heard nothing.
            await record_status(
                uow,
                notification_id=new.notification_id,
                channel=new.channel,
                template=new.template,
                case_id=new.case_id,
                test_delivery=new.test_delivery,
                status=DeliveryStatus.PERMANENT_FAILURE,
                detail=plan.refused,
            )


def _text_for(channel: Channel, message: RenderedMessage) -> str:
    return message.sms if channel is Channel.SMS else message.body


async def forward_to_webhook(msg: Incoming[Contract], uow: UnitOfWork) -> None:
    """Queue a delivery from a partner's topic for its webhook (any event type found there)."""
    endpoint = await uow.webhooks.for_topic(msg.topic)
    if endpoint is None:
        return  # the partner has no webhook (any more): it reads its topic itself
    trace = current_trace_headers()
    await uow.notifications.add(
        NewNotification(
            notification_id=webhook_notification_id(endpoint.partner_id, msg.envelope),
            case_id=msg.case_id,
            channel=Channel.WEBHOOK.value,
            recipient=endpoint.partner_id,
            template=msg.envelope.type,
            subject=f"{msg.envelope.type} {msg.envelope.id}",
            body=structured_cloudevent(msg.envelope, msg.data),
            test_delivery=msg.envelope.testdelivery,
            traceparent=trace.get("traceparent"),
            tracestate=trace.get("tracestate"),
        ),
    )
