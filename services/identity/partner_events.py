"""Announcing partners on ``hub.identity.partners``: keyed by partner id, so one partner's
events stay in order, and with the partner as the business process."""

from __future__ import annotations

import logging

from contracts import Sector
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.runtime import topics
from services.identity.domain import Partner
from services.identity.ports import UnitOfWork

log = logging.getLogger(__name__)


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


async def announce_registered(uow: UnitOfWork, partner: Partner, *, reference_id: str | None = None) -> None:
    """PartnerRegistered as the partner stands now; marks it announced in the same unit of work."""
    await uow.emitter.emit(
        partner_registered(partner),
        topic=topics.IDENTITY_PARTNERS,
        key=partner.partner_id,
        business_process_id=business_process_id(partner.partner_id),
        reference_id=reference_id,
    )
    await uow.partners.mark_announced(partner.partner_id)


async def announce_status(
    uow: UnitOfWork, partner: Partner, reason: str | None, *, reference_id: str | None = None
) -> None:
    await uow.emitter.emit(
        PartnerStatusChanged(partner_id=partner.partner_id, status=partner.status, reason=reason),
        topic=topics.IDENTITY_PARTNERS,
        key=partner.partner_id,
        business_process_id=business_process_id(partner.partner_id),
        reference_id=reference_id,
    )


async def announce_pending(uow: UnitOfWork, *, batch: int) -> int:
    """The announcer's step: up to ``batch`` partners never announced (the seeded ones, rows
    an operator inserted by hand) announced and marked so; returns how many were announced."""
    announced = 0
    for partner in await uow.partners.claim_unannounced(batch):
        try:
            await announce_registered(uow, partner)
            announced += 1
        except ValueError as error:
            # A hand-written row the contract refuses must not stop the service (a crashed
            # worker stops it); it stays unannounced until fixed.
            log.error("partner %s cannot be announced: %s", partner.partner_id, error)
    return announced
