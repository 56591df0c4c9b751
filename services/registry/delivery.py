"""Building what a partner receives: the event minimised to its subscription."""

from __future__ import annotations

from typing import Any

from contracts import CaseDelivery, DeliveredPerson, IssuedPseudonym
from hub.messages import Transaction
from services.registry import repository as repo
from services.registry.domain import allowed_person_fields, get_path, minimize


def case_delivery(
    *,
    case_type: str,
    event_type: str,
    data: dict[str, Any],
    subscriber: repo.Subscriber,
    person_path: str | None,
    issued: IssuedPseudonym | None,
) -> CaseDelivery:
    subject = None
    if person_path is not None and issued is not None:
        person = get_path(data, person_path) or {}
        granted = allowed_person_fields(subscriber.fields, person_path)
        subject = DeliveredPerson(
            sector_pseudonym=issued.pseudonym,
            local_person_id=issued.local_person_id,
            **{name: person.get(name) for name, ok in granted.items() if ok},
        )
    return CaseDelivery(
        case_type=case_type,
        event_type_delivered=event_type,
        recipient=subscriber.partner_id,
        purpose=subscriber.purpose,
        legal_basis=subscriber.legal_basis,
        subject=subject,
        data=minimize(data, subscriber.fields, withhold=person_path),
    )


async def deliver(
    tx: Transaction,
    *,
    case: repo.Case,
    event_type: str,
    data: dict[str, Any],
    subscribers: list[repo.Subscriber],
    person_path: str | None = None,
    pseudonyms: dict[str, IssuedPseudonym] | None = None,
    trace_id: str,
    reference_id: str,
) -> int:
    """Emit one delivery per subscriber, each on the partner's own topic, keyed by the case."""
    sent = 0
    for subscriber in subscribers:
        issued = (pseudonyms or {}).get(subscriber.partner_id)
        if person_path is not None and issued is None:
            continue  # identity issued nothing for this partner (suspended, unknown): no delivery
        delivery = case_delivery(
            case_type=case.case_type,
            event_type=event_type,
            data=data,
            subscriber=subscriber,
            person_path=person_path,
            issued=issued,
        )
        envelope = await tx.emit(
            delivery,
            topic=subscriber.delivery_topic,
            business_process_id=case.case_id,
            reference_id=reference_id,
            subject=issued.pseudonym if issued else None,
            test_delivery=case.test_delivery,
        )
        await repo.add_timeline(
            tx,
            case_id=case.case_id,
            service="registry",
            event_type=delivery.event_type,
            event_id=envelope.id,
            trace_id=trace_id,
            detail=f"{event_type.split('.')[-2]} delivered to {subscriber.partner_id} "
            f"({len(delivery.data)} fields; {subscriber.legal_basis})",
        )
        sent += 1
    return sent
