"""The parties of a case at work: resolved when it opens, who receives, late filling, and
telling operations of a slot nobody fills.

The rules are in ``parties_domain`` and the case aggregate (no I/O); here they meet the
unit of work. A slot left unfilled is never skipped in silence: the case's timeline names
it and the jurisdiction it needs, operations get a ``CasePartyMissing`` event (on
``hub.ops`` and delivered under an ``all-cases`` subscription) and a notice in their
mailbox, and ``hub case show`` / ``hub case unfilled`` list it until a partner that fits is
registered or reactivated.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts import CasePartyMissing, Language, NotificationRequested
from hub.runtime import topics
from services.registry.case_domain import Case
from services.registry.delivery import deliver
from services.registry.domain import ProcessDefinition
from services.registry.model import Partner, Subscriber, TimelineStep
from services.registry.parties_domain import Party, fill_slot
from services.registry.ports import UnitOfWork
from services.registry.subscriptions_domain import grants_by_partner

PARTY_MISSING_STEP = "party-unfilled"  # the timeline's name for a slot nobody fills
PARTY_FILLED_STEP = "party-filled"


async def recipients(
    uow: UnitOfWork, event_type: str, case: Case, parties: Sequence[Party] | None = None
) -> list[Subscriber]:
    """The partners that receive this case's event of ``event_type``, one delivery each: its
    parties (``case.parties`` unless given) with a subscription for a slot they fill (or one
    naming no slot), and subscriptions that span all cases; each with the subscriptions it
    receives under."""
    subscribed = await uow.subscriptions.to(event_type, case.case_type)
    where = {s.subscription.partner_id: s for s in subscribed}
    granted = grants_by_partner(
        (s.subscription for s in subscribed), case.parties if parties is None else parties
    )
    return [
        Subscriber(partner_id, where[partner_id].sector, where[partner_id].delivery_topic, grants)
        for partner_id, grants in granted.items()
    ]


async def resolve(
    uow: UnitOfWork,
    *,
    process: ProcessDefinition,
    case: Case,
    opener: Partner,
    trace_id: str,
    event_id: str,
    ops_email: str,
) -> tuple[Party, ...]:
    """The case's parties from its opening data and the register, stored with the case;
    every unfilled slot is put on the timeline and reported to operations."""
    roles = {slot.role for slot in process.parties if not slot.opener}
    parties = case.resolve_parties(process, opener=opener, partners=await uow.partners.candidates(roles))
    await uow.parties.add(case.case_id, parties)
    for party in parties:
        if not party.filled:
            await report_unfilled(
                uow, case=case, party=party, trace_id=trace_id, event_id=event_id, ops_email=ops_email
            )
    return parties


async def report_unfilled(
    uow: UnitOfWork, *, case: Case, party: Party, trace_id: str, event_id: str, ops_email: str
) -> None:
    """The case's timeline, operations' event and operations' mailbox learn of the slot."""
    detail = f"nobody fills {party.describe()}: {party.unfilled_reason}"
    await uow.timeline.add(
        TimelineStep(
            case_id=case.case_id,
            service="registry",
            event_type=PARTY_MISSING_STEP,
            event_id=event_id,
            trace_id=trace_id,
            detail=detail,
        )
    )
    missing = CasePartyMissing(
        case_type=case.case_type,
        slot=party.slot,
        role=party.role,
        jurisdiction=party.jurisdiction,
        reason=(party.unfilled_reason or "unfilled")[:300],
    )
    await uow.emitter.emit(
        missing, topic=topics.OPS, business_process_id=case.case_id, test_delivery=case.test_delivery
    )
    await deliver(
        uow,
        case=case,
        event_type=CasePartyMissing.event_type,
        data=missing.model_dump(mode="json"),
        subscribers=await recipients(uow, CasePartyMissing.event_type, case),
        trace_id=trace_id,
        reference_id=event_id,
    )
    await uow.emitter.emit(
        _notice_to_operations(case, party, detail, ops_email),
        topic=topics.NOTIFICATION_REQUESTS,
        business_process_id=case.case_id,
        test_delivery=case.test_delivery,
    )


def _notice_to_operations(case: Case, party: Party, detail: str, ops_email: str) -> NotificationRequested:
    return NotificationRequested(
        notification_id=f"{case.case_id}:party-missing:{party.slot}"[:128],
        recipient=ops_email,
        language=Language.DE,
        template="case.party-missing",
        mandatory=True,
        placeholders={
            "case_id": case.case_id,
            "case_type": case.case_type,
            "step": "party-missing",
            "slot": party.slot,
            "role": party.role,
            "jurisdiction": str(party.jurisdiction) if party.jurisdiction else "-",
            "reason": detail,
            "milestone": "",
            "partner": "",
            "first_name": "",
            "official_name": "",
        },
    )


async def fill_open_slots(uow: UnitOfWork, partner_id: str) -> int:
    """A partner registered or reactivated takes the open cases' unfilled slots it fits, by
    the same rule as at opening (the one active partner with the role and jurisdiction).

    From now on it receives the case's events and may act on it; the opening event itself
    is not delivered again (the registry keeps no AHVN13 to ask identity for a pseudonym),
    which the timeline says. Returns how many slots it filled.
    """
    candidate = await uow.partners.candidate(partner_id)
    if candidate is None or not candidate.active:
        return 0
    open_slots = await uow.parties.open_slots_needing(candidate)
    if not open_slots:
        return 0
    rivals = await uow.partners.candidates(candidate.roles)
    filled = 0
    for open_slot in open_slots:
        party = open_slot.party
        decided = fill_slot(party.slot, party.role, party.jurisdiction, rivals)
        if decided.partner_id != partner_id:
            if decided.unfilled_reason is not None:
                await uow.parties.set_unfilled_reason(open_slot.case_id, party.slot, decided.unfilled_reason)
            continue
        await uow.parties.fill(open_slot.case_id, party.slot, partner_id)
        await uow.timeline.add(
            TimelineStep(
                case_id=open_slot.case_id,
                service="registry",
                event_type=PARTY_FILLED_STEP,
                event_id=f"partner:{partner_id}",
                trace_id=open_slot.trace_id,
                detail=f"{party.describe()} filled by {partner_id}, registered after the case opened; "
                "the opening event is not delivered again",
            )
        )
        filled += 1
    return filled
