"""Building what a partner receives: the event minimised to its subscription.

Each routing decision is recorded in the audit log in the same transaction as the
deliveries' outbox rows: a delivery never leaves without its record, and a rolled-back
delivery leaves no record of something that never happened. The record names the basis
the recipient received on: the case's slots it fills, or its all-cases subscription.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from contracts import CaseDelivery, DeliveredPerson, IssuedPseudonym
from hub import audit_store
from hub.audit import AuditEntry, Decision
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
    citizen_id: str | None = None,
) -> int:
    """Emit one delivery per subscriber, each on the partner's own topic, keyed by the case.

    ``citizen_id`` overrides ``case.citizen_id`` when identity's answer brings it in this
    very transaction (the case row read earlier does not have it yet).
    """
    decided = AuditEntry(
        decision=Decision.UNROUTED,
        case_id=case.case_id,
        case_type=case.case_type,
        event_id=reference_id,
        event_type=event_type,
        trace_id=trace_id,
        citizen_id=citizen_id or case.citizen_id,
    )
    records: list[AuditEntry] = (
        [] if subscribers else [dataclasses.replace(decided, reason="no approved subscription")]
    )
    sent = 0
    for subscriber in subscribers:
        if subscriber.basis is None:
            # Every recipient comes from ``parties.recipients``, which says why it may receive.
            raise ValueError(f"no basis to deliver case {case.case_id} to {subscriber.partner_id}")
        issued = (pseudonyms or {}).get(subscriber.partner_id)
        to_partner = dataclasses.replace(
            decided,
            partner_id=subscriber.partner_id,
            sector=subscriber.sector,
            legal_basis=subscriber.legal_basis,
            purpose=subscriber.purpose,
            basis=subscriber.basis,
        )
        if person_path is not None and issued is None:
            # Identity issued nothing for this partner (suspended, unknown): no delivery.
            records.append(
                dataclasses.replace(
                    to_partner,
                    decision=Decision.WITHHELD,
                    reason="no pseudonym issued: partner suspended or unknown to identity",
                )
            )
            continue
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
            f"({len(delivery.data)} fields; {subscriber.legal_basis}; {subscriber.basis or 'no basis'})",
        )
        records.append(
            dataclasses.replace(
                to_partner,
                decision=Decision.DELIVERED,
                delivery_event_id=envelope.id,
                fields=disclosed_fields(delivery, person_path),
                person_pseudonym=issued.pseudonym if issued else None,
            )
        )
        sent += 1
    # Last, so the chain head stays locked only from here to the commit.
    await audit_store.append(tx.conn, audit_store.installed_key(), records)
    return sent


def disclosed_fields(delivery: CaseDelivery, person_path: str | None) -> tuple[str, ...]:
    """Dotted paths of every value the delivery carries: the data's leaves, and the
    person's fields (pseudonym and local id included) under the event's person path."""
    paths = list(_leaves(delivery.data))
    if delivery.subject is not None:
        person = delivery.subject.model_dump(exclude_none=True)
        paths += [f"{person_path or 'subject'}.{name}" for name in person]
    return tuple(sorted(paths))


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for name, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"
