"""Announcing partners on ``hub.identity.partners``: keyed by partner id, so one partner's
events stay in order, and with the partner as the business process."""

from __future__ import annotations

from contracts import Sector
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.runtime import topics
from hub.runtime.outbox import Transaction
from services.identity import partner_repository as partners
from services.identity.partner_repository import Partner


def business_process_id(partner_id: str) -> str:
    return f"partner:{partner_id}"


def partner_registered(partner: Partner) -> PartnerRegistered:
    """The event for a stored partner; raises ``ValueError`` for a row the contract refuses
    (possible only for rows written by hand, bypassing ``RegisterPartner``, e.g. without a
    jurisdiction)."""
    if partner.jurisdiction is None:
        raise ValueError(f"partner {partner.partner_id} has no jurisdiction; register it again with one")
    return PartnerRegistered(
        partner_id=partner.partner_id,
        name=partner.name,
        sector=Sector(partner.sector),
        roles=partner.roles,
        jurisdiction=partner.jurisdiction,
        sedex_id=partner.sedex_id,
        local_person_id_category=partner.local_person_id_category,
        status=partner.status,
    )


async def announce_registered(tx: Transaction, partner: Partner, *, reference_id: str | None = None) -> None:
    """PartnerRegistered as the partner stands now; marks it announced in the same transaction."""
    await tx.emit(
        partner_registered(partner),
        topic=topics.IDENTITY_PARTNERS,
        key=partner.partner_id,
        business_process_id=business_process_id(partner.partner_id),
        reference_id=reference_id,
    )
    await partners.mark_announced(tx, partner.partner_id)


async def announce_status(
    tx: Transaction, partner: Partner, reason: str | None, *, reference_id: str | None = None
) -> None:
    await tx.emit(
        PartnerStatusChanged(partner_id=partner.partner_id, status=partner.status, reason=reason),
        topic=topics.IDENTITY_PARTNERS,
        key=partner.partner_id,
        business_process_id=business_process_id(partner.partner_id),
        reference_id=reference_id,
    )
