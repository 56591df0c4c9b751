"""identity's ports on a ``MemoryStore``: the same behaviour as PostgreSQL's adapter, with
plain values where PostgreSQL keeps sealed ones (``tests/contract/identity`` holds both to it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Collection

from contracts import LocalPersonId, Person
from contracts.admin import RegisterPartner
from contracts.identity import PartnerStatus
from hub.errors import PermanentError, TransientError
from hub.vault.crypto import Erased
from services.identity.adapters.memory.store import (
    LinkedId,
    MemoryStore,
    StoredKey,
    StoredPartner,
    StoredPerson,
)
from services.identity.domain import Partner, PartnerKey, PseudonymBasis
from services.identity.ports import ListingRow


class MemoryPersons:
    def __init__(self, store: MemoryStore, unit: int) -> None:
        self._store, self._unit = store, unit

    def _found(self) -> dict[uuid.UUID, StoredPerson]:
        return {pid: p for pid, p in self._store.state.persons.items() if not p.forgotten}

    async def by_vn(self, vn: str) -> uuid.UUID | None:
        return next((pid for pid, p in self._found().items() if p.person.vn == vn), None)

    async def by_local_id(self, local_id: LocalPersonId) -> uuid.UUID | None:
        linked = self._store.state.local_ids.get((local_id.category, local_id.id))
        return None if linked is None else linked.person_id

    async def names_born_on(self, date_of_birth: dt.date) -> list[tuple[uuid.UUID, str, str]]:
        born = [
            (p.created, pid, p.person)
            for pid, p in self._found().items()
            if p.person.date_of_birth == date_of_birth and not p.destroyed
        ]
        return [(pid, person.official_name, person.first_name) for _, pid, person in sorted(born)]

    async def add(self, person: Person, *, pseudonym_seed: bytes) -> uuid.UUID:
        person_id = uuid.uuid4()
        self._store.state.persons[person_id] = StoredPerson(
            person.model_copy(update={"local_person_id": None}),
            pseudonym_seed,
            uuid.uuid4(),
            len(self._store.state.persons),
        )
        return person_id

    async def pseudonym_basis(self, person_id: uuid.UUID) -> PseudonymBasis:
        stored = self._store.state.persons.get(person_id)
        if stored is None:
            raise PermanentError(f"no person {person_id}")
        if stored.destroyed:
            raise TransientError("the person was erased while their request was being resolved")
        return PseudonymBasis(stored.person.vn, stored.seed)

    async def record(self, person_id: uuid.UUID) -> Person | Erased | None:
        stored = self._store.state.persons.get(person_id)
        if stored is None:
            return None
        return Erased(stored.key_id) if stored.destroyed else stored.person

    async def link_local_id(self, person_id: uuid.UUID, local_id: LocalPersonId) -> None:
        stored = self._store.state.persons.get(person_id)
        if stored is None:
            raise PermanentError(f"person {person_id} has no data key")
        if stored.destroyed:
            return  # nothing may be added to an erased person
        self._store.state.local_ids.setdefault(
            (local_id.category, local_id.id), LinkedId(person_id, self._unit)
        )

    async def local_ids_of(self, person_id: uuid.UUID) -> list[LocalPersonId]:
        stored = self._store.state.persons.get(person_id)
        if stored is None or stored.destroyed:
            return []
        found = [
            (linked.linked, LocalPersonId(category=category, id=local_id))
            for (category, local_id), linked in self._store.state.local_ids.items()
            if linked.person_id == person_id
        ]
        found.sort(key=lambda pair: pair[1].id)
        found.sort(key=lambda pair: pair[0], reverse=True)
        return [local_id for _, local_id in found]

    async def bind_citizen(self, person_id: uuid.UUID, citizen_id: str) -> None:
        stored = self._store.state.persons.get(person_id)
        if stored is None:
            raise PermanentError(f"person {person_id} has no data key")
        if not stored.destroyed:
            self._store.state.citizen_keys.setdefault(citizen_id, stored.key_id)

    async def case_erased(self, case_id: str) -> bool:
        return case_id in self._store.state.erased_cases


class MemoryMatchReviews:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def add(
        self,
        *,
        new_person_id: uuid.UUID,
        candidate_person_id: uuid.UUID,
        reason: str,
        business_process_id: str,
    ) -> None:
        reviews = self._store.state.reviews
        if any(
            (r["new_person_id"], r["candidate_person_id"]) == (new_person_id, candidate_person_id)
            for r in reviews
        ):
            return
        reviews.append(
            {
                "id": len(reviews) + 1,
                "new_person_id": new_person_id,
                "candidate_person_id": candidate_person_id,
                "reason": reason,
                "business_process_id": business_process_id,
                "created_at": dt.datetime.now(dt.UTC),
            }
        )

    async def open(self) -> list[ListingRow]:
        return [dict(review) for review in self._store.state.reviews]


class MemoryPseudonyms:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def current_version(self, sector: str) -> int:
        return self._store.state.sector_keys.setdefault(sector, 1)

    async def rotate(self, sector: str) -> int:
        version = await self.current_version(sector) + 1
        self._store.state.sector_keys[sector] = version
        return version

    async def issued(self, person_id: uuid.UUID, sector: str) -> str | None:
        found = self._store.state.issued.get((person_id, sector))
        return None if found is None else found[0]

    async def record(self, person_id: uuid.UUID, sector: str, pseudonym: str, key_version: int) -> str:
        return self._store.state.issued.setdefault((person_id, sector), (pseudonym, key_version))[0]


class MemoryPartners:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def _current(self, stored: StoredPartner) -> Partner:
        return dataclasses.replace(stored.partner, announced=stored.announced_at is not None)

    async def get(self, partner_id: str, *, for_update: bool = False) -> Partner | None:
        stored = self._store.state.partners.get(partner_id)
        return None if stored is None else self._current(stored)

    async def get_many(self, partner_ids: Collection[str]) -> dict[str, Partner]:
        partners = self._store.state.partners
        return {pid: self._current(partners[pid]) for pid in partner_ids if pid in partners}

    async def upsert(self, command: RegisterPartner) -> Partner:
        now = dt.datetime.now(dt.UTC)
        stored = self._store.state.partners.get(command.partner_id)
        partner = Partner(
            partner_id=command.partner_id,
            name=command.name,
            sector=command.sector.value,
            roles=tuple(command.roles),
            sedex_id=command.sedex_id,
            local_person_id_category=command.local_person_id_category,
            status="active" if stored is None else stored.partner.status,
            announced=False,
            jurisdiction=command.jurisdiction,
        )
        if stored is None:
            stored = StoredPartner(partner, None, now, now, None)
            self._store.state.partners[command.partner_id] = stored
        else:
            stored.partner, stored.updated_at = partner, now
        return self._current(stored)

    async def set_status(self, partner_id: str, status: PartnerStatus, reason: str | None) -> Partner | None:
        stored = self._store.state.partners.get(partner_id)
        if stored is None:
            return None
        stored.partner = dataclasses.replace(stored.partner, status=status)
        stored.status_reason, stored.updated_at = reason, dt.datetime.now(dt.UTC)
        return self._current(stored)

    async def claim_unannounced(self, limit: int) -> list[Partner]:
        waiting = sorted(
            pid for pid, stored in self._store.state.partners.items() if stored.announced_at is None
        )
        return [self._current(self._store.state.partners[pid]) for pid in waiting[:limit]]

    async def mark_announced(self, partner_id: str) -> None:
        self._store.state.partners[partner_id].announced_at = dt.datetime.now(dt.UTC)

    async def listing(self) -> list[ListingRow]:
        return [_listed(self._store.state.partners[pid]) for pid in sorted(self._store.state.partners)]


def _listed(stored: StoredPartner) -> ListingRow:
    partner = stored.partner
    instance, member_class, member_code, subsystem = partner.partner_id.split("/")
    jurisdiction = partner.jurisdiction
    return {
        "partner_id": partner.partner_id,
        "instance": instance,
        "member_class": member_class,
        "member_code": member_code,
        "subsystem": subsystem,
        "name": partner.name,
        "sector": partner.sector,
        "roles": list(partner.roles),
        "sedex_id": partner.sedex_id,
        "local_person_id_category": partner.local_person_id_category,
        "status": partner.status,
        "status_reason": stored.status_reason,
        "registered_at": stored.registered_at,
        "updated_at": stored.updated_at,
        "announced_at": stored.announced_at,
        "jurisdiction": None if jurisdiction is None else jurisdiction.model_dump(exclude_none=True),
    }


class MemoryPartnerKeys:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def get(self, key_id: str, *, for_update: bool = False) -> PartnerKey | None:
        stored = self._store.state.partner_keys.get(key_id)
        return None if stored is None else stored.key

    async def key_id_of(self, public_key: str) -> str | None:
        keys = self._store.state.partner_keys.values()
        return next((s.key.key_id for s in keys if s.key.public_key == public_key), None)

    async def upsert(
        self,
        *,
        key_id: str,
        partner_id: str,
        algorithm: str,
        public_key: str,
        valid_from: dt.datetime,
        valid_until: dt.datetime | None,
    ) -> PartnerKey:
        now = dt.datetime.now(dt.UTC)
        stored = self._store.state.partner_keys.get(key_id)
        if stored is None:
            key = PartnerKey(key_id, partner_id, algorithm, public_key, valid_from, valid_until, None, None)
            stored = StoredKey(key, now, now)
            self._store.state.partner_keys[key_id] = stored
        else:
            stored.key = dataclasses.replace(stored.key, valid_from=valid_from, valid_until=valid_until)
            stored.updated_at = now
        return stored.key

    async def revoke(self, key_id: str, reason: str | None) -> PartnerKey:
        stored = self._store.state.partner_keys[key_id]
        now = dt.datetime.now(dt.UTC)
        stored.key = dataclasses.replace(stored.key, revoked_at=now, revocation_reason=reason)
        stored.updated_at = now
        return stored.key

    async def listing(self, partner_id: str | None = None) -> list[ListingRow]:
        keys = [
            s
            for s in self._store.state.partner_keys.values()
            if partner_id is None or s.key.partner_id == partner_id
        ]
        keys.sort(key=lambda s: (s.key.partner_id, s.key.valid_from, s.key.key_id))
        return [
            dataclasses.asdict(s.key) | {"registered_at": s.registered_at, "updated_at": s.updated_at}
            for s in keys
        ]
