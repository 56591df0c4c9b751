"""Telling the citizen: notification requests at the case's milestones."""

from __future__ import annotations

from typing import Any

from contracts import NotificationRequested
from hub.runtime import topics
from services.registry.domain import ProcessDefinition, get_path
from services.registry.ports import UnitOfWork

MANDATORY_STEPS = frozenset({"received", "action-required", "completed", "rejected"})


def citizen_notice(
    *,
    process: ProcessDefinition,
    case_id: str,
    details: dict[str, Any],
    step: str,
    milestone: str = "",
    reason: str = "",
    partner: str = "",
    action: str = "",
    due_on: str = "",
    citizen_id: str | None = None,
) -> NotificationRequested | None:
    """The notice of ``step``; None if the case type tells no citizen, or the case has no email.
    ``citizen_id`` (from identity) lets the citizen's preference, opt-out and inbox apply."""
    if process.citizen_contact is None:
        return None
    contact = get_path(details, process.citizen_contact)
    if not contact or not contact.get("email"):
        return None
    person = get_path(details, process.subject_person) if process.subject_person else None
    placeholders = {
        "case_id": case_id,
        "case_type": process.case_type,
        "step": step,
        "first_name": (person or {}).get("first_name", ""),
        "official_name": (person or {}).get("official_name", ""),
        "milestone": milestone,
        "reason": reason,
        "partner": partner,
        "action": action,
        "due_on": due_on,
    }
    for name, path in process.citizen_placeholders.items():
        value = get_path(details, path)
        placeholders[name] = "" if value is None else str(value)
    return NotificationRequested(
        notification_id=f"{case_id}:{step}",
        recipient=contact["email"],
        language=contact.get("language", "de"),
        template=f"{process.case_type}.{step}",
        placeholders=placeholders,
        mandatory=step in MANDATORY_STEPS,
        citizen_id=citizen_id,
        phone=contact.get("phone"),
    )


async def notify_citizen(
    uow: UnitOfWork,
    *,
    process: ProcessDefinition,
    case_id: str,
    details: dict[str, Any],
    step: str,
    test_delivery: bool,
    milestone: str = "",
    reason: str = "",
    partner: str = "",
    action: str = "",
    due_on: str = "",
    citizen_id: str | None = None,
) -> None:
    """Emit the citizen's notice of ``step`` (``citizen_notice``), if there is one."""
    notice = citizen_notice(
        process=process,
        case_id=case_id,
        details=details,
        step=step,
        milestone=milestone,
        reason=reason,
        partner=partner,
        action=action,
        due_on=due_on,
        citizen_id=citizen_id,
    )
    if notice is not None:
        await uow.emitter.emit(
            notice,
            topic=topics.NOTIFICATION_REQUESTS,
            business_process_id=case_id,
            test_delivery=test_delivery,
        )
