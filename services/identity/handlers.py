"""What the identity service does: resolve a person, hand out sector pseudonyms.

The reply carries neither the AHVN13 nor the hub-internal person id.
"""

from __future__ import annotations

from contracts import IssuedPseudonym, PseudonymsIssued, PseudonymsRequested
from hub import topics
from hub.messages import Incoming, Transaction
from services.identity import repository as repo
from services.identity.domain import sector_pseudonym


async def issue_pseudonyms(msg: Incoming[PseudonymsRequested], tx: Transaction, *, secret: bytes) -> None:
    person = msg.data.person
    person_id, match = await repo.resolve_person(tx, person)
    issued = []
    for recipient in msg.data.recipients:
        pseudonym = sector_pseudonym(secret, recipient.sector.value, person.vn)
        await repo.record_pseudonym(tx, person_id, recipient.sector.value, pseudonym)
        issued.append(
            IssuedPseudonym(
                partner_id=recipient.partner_id,
                sector=recipient.sector,
                pseudonym=pseudonym,
                local_person_id=None,  # the reporter's local id is not the recipient's (issue #3)
            )
        )
    await tx.emit(
        PseudonymsIssued(match=match, pseudonyms=tuple(issued)),
        topic=topics.IDENTITY_RESULTS,
        business_process_id=msg.case_id,
        reference_id=msg.envelope.id,
        test_delivery=msg.envelope.testdelivery,
    )
