"""Building what a partner receives: the event minimised to its subscriptions.

Each routing decision is recorded in the audit log in the same transaction as the
deliveries' outbox rows: a delivery never leaves without its record, and a rolled-back
delivery leaves no record of something that never happened. A partner receives one
delivery per event, under every subscription that applies to the case (one per party slot
it fills, at most); the log has one entry per such subscription, all naming the same
delivery event: its purpose, legal basis, the basis it applies on (``party: <slot>`` or
``all-cases``) and the disclosed fields it accounts for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from contracts import CaseDelivery, DeliveredPerson, IssuedPseudonym
from hub.audit.chain import AuditEntry, Decision
from services.registry.case_domain import Case
from services.registry.domain import allowed_person_fields, get_path, minimize
from services.registry.model import Subscriber, TimelineStep
from services.registry.ports import UnitOfWork


def case_delivery(
    *,
    case_type: str,
    event_type: str,
    data: dict[str, Any],
    subscriber: Subscriber,
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
    uow: UnitOfWork,
    *,
    case: Case,
    event_type: str,
    data: dict[str, Any],
    subscribers: list[Subscriber],
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
        if not subscriber.grants:
            # Every recipient comes from ``parties.recipients``, which says why it may receive.
            raise ValueError(f"no basis to deliver case {case.case_id} to {subscriber.partner_id}")
        to_partner = dataclasses.replace(decided, partner_id=subscriber.partner_id, sector=subscriber.sector)
        issued = (pseudonyms or {}).get(subscriber.partner_id)
        if person_path is not None and issued is None:
            # Identity issued nothing for this partner (suspended, unknown): no delivery.
            reason = "no pseudonym issued: partner suspended or unknown to identity"
            records += [
                dataclasses.replace(entry, decision=Decision.WITHHELD, reason=reason)
                for entry in _under_each_grant(to_partner, subscriber)
            ]
            continue
        records += await _send(
            uow,
            case=case,
            event_type=event_type,
            data=data,
            subscriber=subscriber,
            person_path=person_path,
            issued=issued,
            trace_id=trace_id,
            reference_id=reference_id,
            decided=to_partner,
        )
        sent += 1
    # Last, so the chain head stays locked only from here to the commit.
    await uow.audit.append(records)
    return sent


async def _send(
    uow: UnitOfWork,
    *,
    case: Case,
    event_type: str,
    data: dict[str, Any],
    subscriber: Subscriber,
    person_path: str | None,
    issued: IssuedPseudonym | None,
    trace_id: str,
    reference_id: str,
    decided: AuditEntry,
) -> list[AuditEntry]:
    """One delivery to ``subscriber`` in the outbox and on the timeline; its audit entries,
    one per grant, each naming the disclosed fields its subscription accounts for."""

    def build(recipient: Subscriber) -> CaseDelivery:
        return case_delivery(
            case_type=case.case_type,
            event_type=event_type,
            data=data,
            subscriber=recipient,
            person_path=person_path,
            issued=issued,
        )

    delivery = build(subscriber)
    envelope = await uow.emitter.emit(
        delivery,
        topic=subscriber.delivery_topic,
        business_process_id=case.case_id,
        reference_id=reference_id,
        subject=issued.pseudonym if issued else None,
        test_delivery=case.test_delivery,
    )
    await uow.timeline.add(
        TimelineStep(
            case_id=case.case_id,
            service="registry",
            event_type=delivery.event_type,
            event_id=envelope.id,
            trace_id=trace_id,
            detail=f"{event_type.split('.')[-2]} delivered to {subscriber.partner_id} "
            f"({len(delivery.data)} fields; {subscriber.legal_basis}; {subscriber.basis})",
        )
    )
    return [
        dataclasses.replace(
            entry,
            decision=Decision.DELIVERED,
            delivery_event_id=envelope.id,
            # What a delivery under this grant alone would carry: every disclosed field is
            # accounted for by at least one entry, and none by a subscription not granting it.
            fields=disclosed_fields(build(dataclasses.replace(subscriber, grants=(grant,))), person_path),
            person_pseudonym=issued.pseudonym if issued else None,
        )
        for entry, grant in zip(_under_each_grant(decided, subscriber), subscriber.grants, strict=True)
    ]


def _under_each_grant(entry: AuditEntry, subscriber: Subscriber) -> list[AuditEntry]:
    return [
        dataclasses.replace(entry, legal_basis=g.legal_basis, purpose=g.purpose, basis=g.basis)
        for g in subscriber.grants
    ]


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
