"""What the identity service does: resolve a person, hand out sector pseudonyms.

The reply carries neither the AHVN13 nor the hub-internal person id. A recipient gets
its sector's pseudonym, and its own register's local id only if the hub knows one;
an unknown or suspended partner gets nothing, so the registry delivers nothing to it.
A pseudonym is derived once per (person, sector), from the person's AHVN13 and seed
(``domain.sector_pseudonym``), and returned as stored ever after.
"""

from __future__ import annotations

import logging

from contracts import IssuedPseudonym, PseudonymsIssued, PseudonymsRequested, Sector
from hub.runtime import topics
from hub.runtime.messages import Incoming
from services.identity.domain import CITIZEN_SECTOR, local_id_for
from services.identity.persons import ResolvedPerson, resolve_person
from services.identity.ports import UnitOfWork

log = logging.getLogger(__name__)


async def issue_pseudonyms(msg: Incoming[PseudonymsRequested], uow: UnitOfWork, *, secret: bytes) -> None:
    if await uow.persons.case_erased(msg.case_id):
        # The person was erased while this request was on its way: they are not taken in again.
        log.info("case %s belongs to an erased person: no pseudonyms issued", msg.case_id)
        return
    resolved = await resolve_person(uow, msg.data.person, business_process_id=msg.case_id)
    recipients = msg.data.recipients
    known = await uow.partners.get_many({recipient.partner_id for recipient in recipients})
    local_ids = await uow.persons.local_ids_of(resolved.person_id)
    issued = []
    for recipient in recipients:
        partner = known.get(recipient.partner_id)
        if partner is None or not partner.active:
            log.warning(
                "no pseudonym for %s in case %s: partner %s",
                recipient.partner_id,
                msg.case_id,
                "unknown" if partner is None else partner.status,
            )
            continue
        # The register's sector counts, not the requester's idea of it: identity owns partners.
        pseudonym = await pseudonym_for(uow, secret, resolved, partner.sector)
        issued.append(
            IssuedPseudonym(
                partner_id=partner.partner_id,
                sector=Sector(partner.sector),
                pseudonym=pseudonym,
                local_person_id=local_id_for(partner.local_person_id_category, local_ids),
            )
        )
    citizen_id = None
    if msg.data.citizen_pseudonym:
        # Not a partner's sector: the hub's own key for the citizen's preferences and inbox.
        citizen_id = await pseudonym_for(uow, secret, resolved, CITIZEN_SECTOR)
        await uow.persons.bind_citizen(resolved.person_id, citizen_id)
    await uow.emitter.emit(
        PseudonymsIssued(match=resolved.match, pseudonyms=tuple(issued), citizen_id=citizen_id),
        topic=topics.IDENTITY_RESULTS,
        business_process_id=msg.case_id,
        reference_id=msg.envelope.id,
        test_delivery=msg.envelope.testdelivery,
    )


async def pseudonym_for(uow: UnitOfWork, secret: bytes, person: ResolvedPerson, sector: str) -> str:
    """Once issued, a (person, sector) pseudonym is returned as stored, across key rotations."""
    stored = await uow.pseudonyms.issued(person.person_id, sector)
    if stored is not None:
        return stored
    version = await uow.pseudonyms.current_version(sector)
    pseudonym = person.basis.pseudonym(secret, sector, version)
    return await uow.pseudonyms.record(person.person_id, sector, pseudonym, version)
