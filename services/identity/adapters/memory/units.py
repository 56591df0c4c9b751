"""Units of work on a ``MemoryStore``, and identity's part of an erasure there."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from hub.runtime.memory import MemoryTransactions
from hub.runtime.messages import Emitter, RecordingEmitter
from hub.vault.crypto import citizen_ref
from services.erasure import StoreReport
from services.identity.adapters.memory.repositories import (
    MemoryMatchReviews,
    MemoryPartnerKeys,
    MemoryPartners,
    MemoryPersons,
    MemoryPseudonyms,
)
from services.identity.adapters.memory.store import MemoryStore
from services.identity.domain import CITIZEN_SECTOR
from services.identity.ports import ErasureSubject


class MemoryRepositories:
    """Every store of the service on ``store``."""

    def __init__(self, store: MemoryStore) -> None:
        unit = store.next_unit()
        self.persons = MemoryPersons(store, unit)
        self.reviews = MemoryMatchReviews(store)
        self.pseudonyms = MemoryPseudonyms(store)
        self.partners = MemoryPartners(store)
        self.partner_keys = MemoryPartnerKeys(store)


class MemoryUnitOfWork(MemoryRepositories):
    """The stores of ``store`` and ``emitter``; a handler's test reads both afterwards."""

    def __init__(self, store: MemoryStore, emitter: Emitter) -> None:
        super().__init__(store)
        self.emitter = emitter


class MemoryUnitsOfWork(MemoryTransactions[MemoryUnitOfWork]):
    """Units of work for workers: each rolls the store back if its block raises, and its
    events join ``emitter`` only if it commits."""

    def __init__(self, store: MemoryStore, emitter: RecordingEmitter) -> None:
        super().__init__(store, emitter, lambda own: MemoryUnitOfWork(store, own))


class MemoryIdentityErasure:
    """identity's part of an erasure on the in-memory store (``ports.LocatingErasure``);
    ``MemoryStore.destroy_keys`` plays the vault's part."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._located: set[uuid.UUID] = set()

    async def locate(self, *, vn: str | None, citizen_id: str | None) -> ErasureSubject:
        state = self._store.state
        known = {pid: p for pid, p in state.persons.items() if not p.forgotten}
        refs: list[str] = []
        person_ids: set[uuid.UUID] = set()
        citizen_ids: set[str] = set()
        if vn is not None:
            refs.append(f"subject:{vn}")
            person_ids |= {pid for pid, p in known.items() if p.person.vn == vn}
        if citizen_id is not None:
            refs.append(citizen_ref(citizen_id))
            citizen_ids.add(citizen_id)
            person_ids |= {
                pid
                for (pid, sector), (pseudonym, _) in state.issued.items()
                if sector == CITIZEN_SECTOR and pseudonym == citizen_id and pid in known
            }
        for (pid, sector), (pseudonym, _) in state.issued.items():
            if pid in person_ids and sector == CITIZEN_SECTOR:
                citizen_ids.add(pseudonym)
        refs += [
            f"subject:{state.persons[pid].person.vn}"
            for pid in person_ids
            if not state.persons[pid].destroyed
        ]
        refs += [citizen_ref(c) for c in citizen_ids]
        self._located |= person_ids
        key_ids = tuple(state.persons[pid].key_id for pid in person_ids)
        return ErasureSubject(frozenset(person_ids), frozenset(citizen_ids), tuple(refs), key_ids)

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        return set()  # identity keeps nothing by case

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        state = self._store.state
        for person_id in self._located:
            state.persons[person_id].forgotten = True
        for key, linked in list(state.local_ids.items()):
            if linked.person_id in self._located:
                del state.local_ids[key]
        return [
            StoreReport(
                "identity.persons", "record unreadable, lookups and local ids deleted", len(self._located)
            )
        ]
