"""Who is this person? The lookups, in the order ``domain.decide_match`` weighs them.

A person created here gets a new pseudonym seed: after an erasure the lookups no longer
find the erased person, so the same AHVN13 comes back as a new person with new pseudonyms.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from contracts import Person
from services.identity.domain import (
    Candidates,
    Match,
    PseudonymBasis,
    decide_match,
    new_pseudonym_seed,
    same_name,
)
from services.identity.ports import UnitOfWork

REVIEW_REASON = "same name and date of birth, different AHVN13"


@dataclass(frozen=True)
class ResolvedPerson:
    person_id: uuid.UUID
    basis: PseudonymBasis  # what the person's pseudonyms derive from; never leaves this service
    match: Match


async def resolve_person(uow: UnitOfWork, person: Person, *, business_process_id: str) -> ResolvedPerson:
    candidates = await _candidates(uow, person)
    decision = decide_match(candidates)
    if decision.person_id is not None:
        known = decision.person_id
        # The AHVN13 and seed first recorded: a person found by local id may bring another AHVN13.
        basis = await uow.persons.pseudonym_basis(known)
        if person.local_person_id is not None:
            await uow.persons.link_local_id(known, person.local_person_id)
        return ResolvedPerson(known, basis, decision.match)
    seed = new_pseudonym_seed()
    person_id = await uow.persons.add(person, pseudonym_seed=seed)
    if person.local_person_id is not None:
        await uow.persons.link_local_id(person_id, person.local_person_id)
    for candidate in decision.review_candidates:
        await uow.reviews.add(
            new_person_id=person_id,
            candidate_person_id=candidate,
            reason=REVIEW_REASON,
            business_process_id=business_process_id,
        )
    return ResolvedPerson(person_id, PseudonymBasis(person.vn, seed), decision.match)


async def _candidates(uow: UnitOfWork, person: Person) -> Candidates:
    """Asks only as far as needed: a later lookup cannot change an earlier match."""
    found = Candidates(by_vn=await uow.persons.by_vn(person.vn))
    if found.by_vn is None and person.local_person_id is not None:
        found = dataclasses.replace(found, by_local_id=await uow.persons.by_local_id(person.local_person_id))
    if found.by_vn is None and found.by_local_id is None:
        born_same_day = await uow.persons.names_born_on(person.date_of_birth)
        look_alikes = tuple(
            person_id
            for person_id, official_name, first_name in born_same_day
            if same_name(person.official_name, person.first_name, official_name, first_name)
        )
        found = dataclasses.replace(found, same_name_and_birth=look_alikes)
    return found
