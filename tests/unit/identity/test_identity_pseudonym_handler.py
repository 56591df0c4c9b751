"""``issue_pseudonyms`` on the in-memory stores: who the person is, what each partner gets.

Sector pseudonyms are stable per (person, sector) across key rotations; a new person gets
a seed of their own, so their pseudonyms are not derivable from the AHVN13 alone.
"""

from __future__ import annotations

import dataclasses

import pytest

from contracts import LocalPersonId, Person, PseudonymsIssued, Sector
from hub.errors import TransientError
from hub.runtime import topics
from services.identity.adapters.memory import MemoryRepositories, MemoryStore
from services.identity.domain import PseudonymBasis, sector_pseudonym
from services.identity.persons import REVIEW_REASON
from tests.fixtures.pseudonyms import from_ahvn13_alone
from tests.unit.identity.support import (
    KRIENS,
    KRIENS_OFFICE,
    LUCERNE,
    LUCERNE_OFFICE,
    PORTAL,
    SECRET,
    TAX,
    TAX_OFFICE,
    answer,
    incoming,
    issue,
    person,
    request,
    seeded_store,
)

pytestmark = pytest.mark.asyncio
LUCERNE_ID = LocalPersonId(category="CH.LU.1061", id="L-4711")


@pytest.fixture
def store() -> MemoryStore:
    return seeded_store()


async def _basis(store: MemoryStore, someone: Person) -> PseudonymBasis:
    persons = MemoryRepositories(store).persons
    person_id = await persons.by_vn(someone.vn)
    assert person_id is not None
    return await persons.pseudonym_basis(person_id)


async def _rotate(store: MemoryStore, sector: str) -> int:
    return await MemoryRepositories(store).pseudonyms.rotate(sector)


def _suspend(store: MemoryStore, partner_id: str) -> None:
    stored = store.state.partners[partner_id]
    stored.partner = dataclasses.replace(stored.partner, status="suspended")


# What the answer looks like.


async def test_the_answer_goes_to_the_registry_in_reply_to_the_request(store: MemoryStore) -> None:
    msg = incoming(request(person(1), TAX), case_id="eumzug-42")
    emitter = await answer(store, msg)
    [emitted] = emitter.emitted
    assert emitted.topic == topics.IDENTITY_RESULTS
    assert (emitted.key, emitted.envelope.businessprocessid) == ("eumzug-42", "eumzug-42")
    assert emitted.envelope.referenceid == msg.envelope.id
    assert isinstance(emitted.data, PseudonymsIssued)
    assert emitted.data.match == "new"


async def test_the_answer_holds_neither_the_ahvn13_nor_the_person_id(store: MemoryStore) -> None:
    issued = await issue(store, person(1, local_id=LocalPersonId(category="CH.LU.1059", id="K-1")), KRIENS)
    [person_id] = store.state.persons
    text = issued.model_dump_json()
    assert person(1).vn not in text
    assert str(person_id) not in text


async def test_a_case_of_an_erased_person_gets_no_answer_and_stores_nobody(store: MemoryStore) -> None:
    store.erase_case("eumzug-gone")
    emitter = await answer(store, incoming(request(person(1), TAX), case_id="eumzug-gone"))
    assert emitter.emitted == []
    assert store.state.persons == {}


# Sector pseudonyms.


async def test_partners_of_one_sector_share_a_pseudonym_and_other_sectors_differ(store: MemoryStore) -> None:
    issued = await issue(store, person(1), KRIENS, LUCERNE, TAX)
    by_partner = {p.partner_id: p for p in issued.pseudonyms}
    assert by_partner[KRIENS_OFFICE].pseudonym == by_partner[LUCERNE_OFFICE].pseudonym
    assert by_partner[TAX_OFFICE].pseudonym != by_partner[KRIENS_OFFICE].pseudonym
    basis = await _basis(store, person(1))
    assert by_partner[TAX_OFFICE].pseudonym == sector_pseudonym(SECRET, "tax", person(1).vn, 1, basis.seed)


async def test_a_new_person_gets_a_seed_and_pseudonyms_not_derivable_from_the_ahvn13_alone(
    store: MemoryStore,
) -> None:
    issued = await issue(store, person(1), KRIENS, TAX)
    basis = await _basis(store, person(1))
    assert basis.vn == person(1).vn
    assert len(basis.seed) >= 16
    recomputable = {
        from_ahvn13_alone(SECRET, "resident-registration", person(1).vn, 1),
        from_ahvn13_alone(SECRET, "tax", person(1).vn, 1),
    }
    assert {p.pseudonym for p in issued.pseudonyms}.isdisjoint(recomputable)


async def test_the_same_person_asking_again_gets_the_same_pseudonyms(store: MemoryStore) -> None:
    first = await issue(store, person(1), KRIENS, LUCERNE, TAX)
    again = await issue(store, person(1), KRIENS, LUCERNE, TAX)
    assert again.match == "exact-vn"
    assert again.pseudonyms == first.pseudonyms
    assert len(store.state.persons) == 1


async def test_a_person_found_by_local_id_keeps_their_seed(store: MemoryStore) -> None:
    kriens_id = LocalPersonId(category="CH.LU.1059", id="K-9")
    first = await issue(store, person(1, local_id=kriens_id), TAX)
    # The register sends its id with an AHVN13 identity does not know: the local id finds the
    # person, and their pseudonyms still derive from the AHVN13 and seed first recorded.
    again = await issue(store, person(7, local_id=kriens_id), TAX, KRIENS)
    assert again.match == "local-id"
    assert again.pseudonyms[0] == first.pseudonyms[0]
    basis = await _basis(store, person(1))
    assert again.pseudonyms[1].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(1).vn, 1, basis.seed
    )


async def test_two_persons_get_different_pseudonyms_and_seeds(store: MemoryStore) -> None:
    anna = await issue(store, person(1), KRIENS, TAX)
    beat = await issue(store, person(2, first_name="Beat"), KRIENS, TAX)
    assert {p.pseudonym for p in anna.pseudonyms}.isdisjoint({p.pseudonym for p in beat.pseudonyms})
    assert (await _basis(store, person(1))).seed != (await _basis(store, person(2))).seed


async def test_an_issued_pseudonym_survives_a_key_rotation(store: MemoryStore) -> None:
    before = await issue(store, person(1), TAX)
    assert await _rotate(store, "tax") == 2
    after = await issue(store, person(1), TAX)
    assert after.pseudonyms == before.pseudonyms


async def test_after_a_rotation_new_pairs_get_the_new_key_version(store: MemoryStore) -> None:
    await issue(store, person(1), TAX)
    assert await _rotate(store, "tax") == 2
    assert await _rotate(store, "tax") == 3
    newcomer = await issue(store, person(2, first_name="Beat"), TAX)
    beat = await _basis(store, person(2))
    assert newcomer.pseudonyms[0].pseudonym == sector_pseudonym(SECRET, "tax", person(2).vn, 3, beat.seed)
    # An existing person new to a sector gets that sector's current version too.
    first_in_registration = await issue(store, person(1), KRIENS)
    anna = await _basis(store, person(1))
    assert first_in_registration.pseudonyms[0].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(1).vn, 1, anna.seed
    )
    assert store.state.sector_keys == {"tax": 3, "resident-registration": 1}


async def test_a_rotation_touches_only_its_own_sector(store: MemoryStore) -> None:
    before = await issue(store, person(1), KRIENS)
    await _rotate(store, "tax")
    newcomer = await issue(store, person(2, first_name="Beat"), KRIENS)
    beat = await _basis(store, person(2))
    assert newcomer.pseudonyms[0].pseudonym == sector_pseudonym(
        SECRET, "resident-registration", person(2).vn, 1, beat.seed
    )
    assert (await issue(store, person(1), KRIENS)).pseudonyms == before.pseudonyms


async def test_a_person_erased_while_their_request_was_resolved_is_retried(store: MemoryStore) -> None:
    await issue(store, person(1), TAX)
    [stored] = store.state.persons.values()
    store.destroy_keys([stored.key_id])  # the keys are gone, the lookups not yet
    with pytest.raises(TransientError, match="erased"):
        await issue(store, person(1), TAX, case_id="eumzug-2")


# The citizen id.


async def test_a_citizen_id_is_the_citizen_services_pseudonym_and_reaches_the_persons_key(
    store: MemoryStore,
) -> None:
    issued = await issue(store, person(1), TAX, citizen=True)
    basis = await _basis(store, person(1))
    assert issued.citizen_id == sector_pseudonym(SECRET, "citizen-services", person(1).vn, 1, basis.seed)
    [stored] = store.state.persons.values()
    assert store.state.citizen_keys == {issued.citizen_id: stored.key_id}
    again = await issue(store, person(1), TAX, citizen=True)
    assert again.citizen_id == issued.citizen_id


async def test_no_citizen_id_unless_asked_for(store: MemoryStore) -> None:
    issued = await issue(store, person(1), TAX)
    assert issued.citizen_id is None
    assert store.state.citizen_keys == {}


# What each partner gets.


async def test_a_partner_gets_a_local_id_only_of_its_own_register(store: MemoryStore) -> None:
    kriens_id = LocalPersonId(category="CH.LU.1059", id="K-77")
    issued = await issue(store, person(1, local_id=kriens_id), KRIENS, LUCERNE, TAX)
    by_partner = {p.partner_id: p for p in issued.pseudonyms}
    assert by_partner[KRIENS_OFFICE].local_person_id == kriens_id
    assert by_partner[LUCERNE_OFFICE].local_person_id is None  # Lucerne's register has no id yet
    assert by_partner[TAX_OFFICE].local_person_id is None  # the tax office uses no local ids


async def test_a_local_id_learnt_earlier_reaches_its_register_later(store: MemoryStore) -> None:
    lucerne_id = LocalPersonId(category="CH.LU.1061", id="L-1")
    await issue(store, person(1, local_id=lucerne_id), TAX)
    later = await issue(store, person(1), LUCERNE, KRIENS)
    by_partner = {p.partner_id: p for p in later.pseudonyms}
    assert by_partner[LUCERNE_OFFICE].local_person_id == lucerne_id
    assert by_partner[KRIENS_OFFICE].local_person_id is None


async def test_a_suspended_partner_gets_no_pseudonym(store: MemoryStore) -> None:
    _suspend(store, LUCERNE_OFFICE)
    issued = await issue(store, person(1), KRIENS, LUCERNE, TAX)
    assert {p.partner_id for p in issued.pseudonyms} == {KRIENS_OFFICE, TAX_OFFICE}


async def test_an_unknown_partner_gets_no_pseudonym(store: MemoryStore) -> None:
    issued = await issue(store, person(1), ("CH/MUN/9999/unknown", Sector.TAX), TAX)
    assert [p.partner_id for p in issued.pseudonyms] == [TAX_OFFICE]


async def test_the_registers_sector_counts_not_the_one_asked_for(store: MemoryStore) -> None:
    issued = await issue(store, person(1), (PORTAL, Sector.TAX), KRIENS)
    portal, kriens = issued.pseudonyms
    assert portal.sector is Sector.RESIDENT_REGISTRATION
    assert portal.pseudonym == kriens.pseudonym


# Who is this person: exact AHVN13 first, then a register's local id; look-alikes go to review.


async def test_a_first_request_creates_the_person_and_a_repeat_matches_the_ahvn13(store: MemoryStore) -> None:
    first = await issue(store, person(1), TAX)
    again = await issue(store, person(1, official_name="Muster-Meier"), TAX)
    assert (first.match, again.match) == ("new", "exact-vn")
    assert again.pseudonyms == first.pseudonyms
    assert len(store.state.persons) == 1


async def test_the_ahvn13_wins_over_a_local_id_of_someone_else(store: MemoryStore) -> None:
    await issue(store, person(1, local_id=LUCERNE_ID), TAX)
    second = await issue(store, person(2, first_name="Beat"), TAX)
    # Person 2 presents person 1's local id: the AHVN13 decides, and the id keeps its owner.
    later = await issue(store, person(2, first_name="Beat", local_id=LUCERNE_ID), TAX)
    assert later.match == "exact-vn"
    assert later.pseudonyms == second.pseudonyms
    assert len(store.state.persons) == 2
    persons = MemoryRepositories(store).persons
    assert await persons.by_local_id(LUCERNE_ID) == await persons.by_vn(person(1).vn)


async def test_a_known_local_id_matches_when_the_ahvn13_is_unknown(store: MemoryStore) -> None:
    first = await issue(store, person(1, local_id=LUCERNE_ID), TAX)
    other_vn = await issue(store, person(3, first_name="Anna", local_id=LUCERNE_ID), TAX)
    assert other_vn.match == "local-id"
    assert other_vn.pseudonyms == first.pseudonyms  # the same person, the same pseudonym
    assert len(store.state.persons) == 1


async def test_same_name_and_birth_is_never_merged_but_flagged_for_review(store: MemoryStore) -> None:
    first = await issue(store, person(1), TAX)
    look_alike = await issue(
        store, person(2, official_name="MUSTER", first_name="anna"), TAX, case_id="eumzug-7"
    )
    assert look_alike.match == "flagged-for-review"
    assert look_alike.pseudonyms[0].pseudonym != first.pseudonyms[0].pseudonym  # a separate person
    assert len(store.state.persons) == 2
    [review] = await MemoryRepositories(store).reviews.open()
    persons = MemoryRepositories(store).persons
    anna, beat = await persons.by_vn(person(1).vn), await persons.by_vn(person(2).vn)
    assert (review["new_person_id"], review["candidate_person_id"]) == (beat, anna)
    assert review["business_process_id"] == "eumzug-7"
    assert review["reason"] == REVIEW_REASON == "same name and date of birth, different AHVN13"


async def test_a_flagged_person_is_matched_by_ahvn13_next_time_without_a_new_review(
    store: MemoryStore,
) -> None:
    await issue(store, person(1), TAX)
    await issue(store, person(2), TAX)
    assert (await issue(store, person(2), TAX)).match == "exact-vn"
    assert len(await MemoryRepositories(store).reviews.open()) == 1


async def test_a_different_first_name_is_simply_a_new_person(store: MemoryStore) -> None:
    await issue(store, person(1), TAX)
    assert (await issue(store, person(2, first_name="Anne"), TAX)).match == "new"
    assert await MemoryRepositories(store).reviews.open() == []
