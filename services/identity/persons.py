"""Who is this person? The lookups, in the order ``domain.decide_match`` weighs them.

A person created here gets a new pseudonym seed: after an erasure the lookups no longer
find the erased person, so the same AHVN13 comes back as a new person with new pseudonyms.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from contracts import Person
from hub.runtime.outbox import Transaction
from services.identity import repository as repo
from services.identity.domain import (
    Candidates,
    Match,
    PseudonymBasis,
    decide_match,
    new_pseudonym_seed,
    same_name,
)

REVIEW_REASON = "same name and date of birth, different AHVN13"


@dataclass(frozen=True)
class ResolvedPerson:
    person_id: uuid.UUID
    basis: PseudonymBasis  # what the person's pseudonyms derive from; never leaves this service
    match: Match


async def resolve_person(tx: Transaction, person: Person, *, business_process_id: str) -> ResolvedPerson:
    candidates = await _candidates(tx, person)
    decision = decide_match(candidates)
    if decision.person_id is not None:
        known = decision.person_id
        basis = await repo.pseudonym_basis(tx, known, person.vn)
        if person.local_person_id is not None:
            await repo.link_local_id(tx, known, person.local_person_id)
        return ResolvedPerson(known, basis, decision.match)
    seed = new_pseudonym_seed()
    person_id = await repo.insert_person(tx, person, pseudonym_seed=seed)
    if person.local_person_id is not None:
        await repo.link_local_id(tx, person_id, person.local_person_id)
    for candidate in decision.review_candidates:
        await repo.add_review(
            tx,
            new_person_id=person_id,
            candidate_person_id=candidate,
            reason=REVIEW_REASON,
            business_process_id=business_process_id,
        )
    return ResolvedPerson(person_id, PseudonymBasis(person.vn, seed), decision.match)


async def _candidates(tx: Transaction, person: Person) -> Candidates:
    """Asks only as far as needed: a later lookup cannot change an earlier match."""
    found = Candidates(by_vn=await repo.person_by_vn(tx, person.vn))
    if found.by_vn is None and person.local_person_id is not None:
        found = dataclasses.replace(
            found, by_local_id=await repo.person_by_local_id(tx, person.local_person_id)
        )
    if found.by_vn is None and found.by_local_id is None:
        born_same_day = await repo.names_born_on(tx, person.date_of_birth)
        look_alikes = tuple(
            person_id
            for person_id, official_name, first_name in born_same_day
            if same_name(person.official_name, person.first_name, official_name, first_name)
        )
        found = dataclasses.replace(found, same_name_and_birth=look_alikes)
    return found
