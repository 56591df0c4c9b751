"""The parties of a case at work: resolved when it opens, who receives, late filling, and
telling operations of a slot nobody fills.

The rules are in ``parties_domain`` (no I/O); here they meet the tables. A slot left
unfilled is never skipped in silence: the case's timeline names it and the jurisdiction it
needs, operations get a ``CasePartyMissing`` event (on ``hub.ops`` and delivered under an
``all-cases`` subscription) and a notice in their mailbox, and ``hub case show`` /
``hub case unfilled`` list it until a partner that fits is registered or reactivated.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts import CasePartyMissing, Language, NotificationRequested
from hub.runtime import topics
from hub.runtime.outbox import Transaction
from services.registry import party_repository as party_repo
from services.registry import repository as repo
from services.registry.delivery import deliver
from services.registry.domain import ProcessDefinition
from services.registry.parties_domain import Candidate, Party, fill_slot, resolve_parties
from services.registry.subscriptions_domain import grants_by_partner

PARTY_MISSING_STEP = "party-unfilled"  # the timeline's name for a slot nobody fills
PARTY_FILLED_STEP = "party-filled"


async def recipients(
    tx: Transaction, event_type: str, case: repo.Case, parties: Sequence[Party] | None = None
) -> list[repo.Subscriber]:
    """The partners that receive this case's event of ``event_type``, one delivery each: its
    parties with a subscription for a slot they fill (or one naming no slot), and
    subscriptions that span all cases; each with the subscriptions it receives under."""
    if parties is None:
        parties = await party_repo.parties_of(tx, case.case_id)
    subscribed = await repo.subscriptions_to(tx, event_type, case.case_type)
    where = {s.subscription.partner_id: s for s in subscribed}
    return [
        repo.Subscriber(partner_id, where[partner_id].sector, where[partner_id].delivery_topic, grants)
        for partner_id, grants in grants_by_partner((s.subscription for s in subscribed), parties).items()
    ]


async def resolve(
    tx: Transaction,
    *,
    process: ProcessDefinition,
    case: repo.Case,
    opener: repo.Partner,
    trace_id: str,
    event_id: str,
    ops_email: str,
) -> tuple[Party, ...]:
    """The case's parties from its opening data and the register, stored with the case;
    every unfilled slot is put on the timeline and reported to operations."""
    roles = {slot.role for slot in process.parties if not slot.opener}
    parties = resolve_parties(
        process,
        case.details,
        opener=Candidate(opener.partner_id, opener.roles, opener.jurisdiction, opener.status == "active"),
        partners=await party_repo.candidates(tx, roles),
    )
    await party_repo.insert_parties(tx, case.case_id, parties)
    for party in parties:
        if not party.filled:
            await report_unfilled(
                tx, case=case, party=party, trace_id=trace_id, event_id=event_id, ops_email=ops_email
            )
    return parties


async def report_unfilled(
    tx: Transaction, *, case: repo.Case, party: Party, trace_id: str, event_id: str, ops_email: str
) -> None:
    """The case's timeline, operations' event and operations' mailbox learn of the slot."""
    detail = f"nobody fills {party.describe()}: {party.unfilled_reason}"
    await repo.add_timeline(
        tx,
        case_id=case.case_id,
        service="registry",
        event_type=PARTY_MISSING_STEP,
        event_id=event_id,
        trace_id=trace_id,
        detail=detail,
    )
    missing = CasePartyMissing(
        case_type=case.case_type,
        slot=party.slot,
        role=party.role,
        jurisdiction=party.jurisdiction,
        reason=(party.unfilled_reason or "unfilled")[:300],
    )
    await tx.emit(
        missing, topic=topics.OPS, business_process_id=case.case_id, test_delivery=case.test_delivery
    )
    await deliver(
        tx,
        case=case,
        event_type=CasePartyMissing.event_type,
        data=missing.model_dump(mode="json"),
        subscribers=await recipients(tx, CasePartyMissing.event_type, case),
        trace_id=trace_id,
        reference_id=event_id,
    )
    await tx.emit(
        _notice_to_operations(case, party, detail, ops_email),
        topic=topics.NOTIFICATION_REQUESTS,
        business_process_id=case.case_id,
        test_delivery=case.test_delivery,
    )


def _notice_to_operations(
    case: repo.Case, party: Party, detail: str, ops_email: str
) -> NotificationRequested:
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


async def fill_open_slots(tx: Transaction, partner_id: str) -> int:
    """A partner registered or reactivated takes the open cases' unfilled slots it fits, by
    the same rule as at opening (the one active partner with the role and jurisdiction).

    From now on it receives the case's events and may act on it; the opening event itself
    is not delivered again (the registry keeps no AHVN13 to ask identity for a pseudonym),
    which the timeline says. Returns how many slots it filled.
    """
    candidate = await party_repo.candidate(tx, partner_id)
    if candidate is None or not candidate.active:
        return 0
    open_slots = await party_repo.open_slots_needing(tx, candidate)
    if not open_slots:
        return 0
    rivals = await party_repo.candidates(tx, candidate.roles)
    filled = 0
    for open_slot in open_slots:
        party = open_slot.party
        decided = fill_slot(party.slot, party.role, party.jurisdiction, rivals)
        if decided.partner_id != partner_id:
            if decided.unfilled_reason is not None:
                await party_repo.set_unfilled_reason(
                    tx, open_slot.case_id, party.slot, decided.unfilled_reason
                )
            continue
        await party_repo.set_filled(tx, open_slot.case_id, party.slot, partner_id)
        await repo.add_timeline(
            tx,
            case_id=open_slot.case_id,
            service="registry",
            event_type=PARTY_FILLED_STEP,
            event_id=f"partner:{partner_id}",
            trace_id=open_slot.trace_id,
            detail=f"{party.describe()} filled by {partner_id}, registered after the case opened; "
            "the opening event is not delivered again",
        )
        filled += 1
    return filled
