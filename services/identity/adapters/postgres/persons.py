"""Persons, their local ids and match reviews, in identity's tables.

The AHVN13 lives in ``persons`` and nowhere else in the hub, and even there only sealed:
a person's AHVN13, names, sex and date of birth are one sealed ``record`` under the
person's data key (``hub.vault``), a local register id is sealed in its row. Lookups go
through blind indexes (keyed hashes, equality only). Both take the vault's master key,
which the composition root hands over.

The record also holds the person's pseudonym seed (``domain.sector_pseudonym``), so that
destroying the data key destroys the seed too: an erased person's pseudonyms can never be
derived again.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from contracts import LocalPersonId, Person
from hub.errors import ConfigurationError, PermanentError, TransientError
from hub.vault import store as vault_store
from hub.vault.crypto import DataKey, Erased, MasterKey, case_ref, citizen_ref
from services.identity.domain import PseudonymBasis
from services.identity.ports import ListingRow

SEED_FIELD = "pseudonym_seed"  # in the sealed record, base64


def record_context(person_id: uuid.UUID) -> str:
    """Binds a sealed record to its table, column and row: moved elsewhere, it fails to open."""
    return f"identity.persons.record:{person_id}"


def local_id_context(person_id: uuid.UUID, category: str, index: str) -> str:
    return f"identity.local_person_ids.local_id_sealed:{person_id}:{category}:{index}"


def vn_index(master: MasterKey, vn: str) -> str:
    return master.blind_index("identity.vn", vn)


def dob_index(master: MasterKey, date_of_birth: dt.date) -> str:
    return master.blind_index("identity.date-of-birth", date_of_birth.isoformat())


def local_id_index(master: MasterKey, local_id: LocalPersonId) -> str:
    return master.blind_index("identity.local-id", f"{local_id.category}\x1f{local_id.id}")


def sealed_record(person: Person, pseudonym_seed: bytes) -> dict[str, str]:
    """What the sealed ``record`` holds."""
    return {
        "vn": person.vn,
        "official_name": person.official_name,
        "first_name": person.first_name,
        "sex": person.sex.value,
        "date_of_birth": person.date_of_birth.isoformat(),
        SEED_FIELD: base64.b64encode(pseudonym_seed).decode(),
    }


def basis_of(record: dict[str, Any]) -> PseudonymBasis:
    """The pseudonym basis in an opened record: the AHVN13 as first recorded, and the seed."""
    return PseudonymBasis(record["vn"], base64.b64decode(record[SEED_FIELD]))


def newest_link_first(rows: Sequence[Any], opened: Sequence[Any]) -> list[LocalPersonId]:
    """A person's local ids from their ``local_person_ids`` rows and the opened values, in
    the order ``Persons.local_ids_of`` promises; ids whose key was destroyed are left out."""
    found = [
        (row["linked_at"], LocalPersonId(category=row["category"], id=value))
        for row, value in zip(rows, opened, strict=True)
        if not isinstance(value, Erased)
    ]
    found.sort(key=lambda pair: pair[1].id)
    found.sort(key=lambda pair: pair[0], reverse=True)  # stable: ties stay ordered by id
    return [local_id for _, local_id in found]


def require(master: MasterKey | None) -> MasterKey:
    # Fail closed: without the key nothing personal can be stored, found or read.
    if master is None:
        raise ConfigurationError("no vault master key: personal data cannot be stored or read")
    return master


class PostgresPersons:
    def __init__(self, conn: asyncpg.Connection, master: MasterKey | None) -> None:
        self._conn, self._master = conn, master

    @property
    def master(self) -> MasterKey:
        return require(self._master)

    async def by_vn(self, vn: str) -> uuid.UUID | None:
        person_id: uuid.UUID | None = await self._conn.fetchval(
            "SELECT person_id FROM persons WHERE vn_index = $1", vn_index(self.master, vn)
        )
        return person_id

    async def by_local_id(self, local_id: LocalPersonId) -> uuid.UUID | None:
        person_id: uuid.UUID | None = await self._conn.fetchval(
            "SELECT person_id FROM local_person_ids WHERE category = $1 AND local_id_index = $2",
            local_id.category,
            local_id_index(self.master, local_id),
        )
        return person_id

    async def names_born_on(self, date_of_birth: dt.date) -> list[tuple[uuid.UUID, str, str]]:
        rows = await self._conn.fetch(
            "SELECT person_id, record FROM persons WHERE dob_index = $1 ORDER BY created_at",
            dob_index(self.master, date_of_birth),
        )
        records = await vault_store.open_json_many(
            self._conn, self.master, [(row["record"], record_context(row["person_id"])) for row in rows]
        )
        return [
            (row["person_id"], record["official_name"], record["first_name"])
            for row, record in zip(rows, records, strict=True)
            if not isinstance(record, Erased)
        ]

    async def add(self, person: Person, *, pseudonym_seed: bytes) -> uuid.UUID:
        """Sealed with the seed under the person's data key: the key the registry sealed the
        person's case under (the AHVN13's subject reference)."""
        master = self.master
        person_id = uuid.uuid4()
        key = await vault_store.key_for(self._conn, master, master.subject_ref(person.vn))
        if isinstance(key, Erased):  # erasure deletes subject references, so this is a bug
            raise PermanentError("the person's subject reference names a destroyed key")
        await self._conn.execute(
            """
            INSERT INTO persons (person_id, key_id, record, vn_index, dob_index)
            VALUES ($1, $2, $3, $4, $5)
            """,
            person_id,
            key.key_id,
            vault_store.seal_json(key, sealed_record(person, pseudonym_seed), record_context(person_id)),
            vn_index(master, person.vn),
            dob_index(master, person.date_of_birth),
        )
        return person_id

    async def pseudonym_basis(self, person_id: uuid.UUID) -> PseudonymBasis:
        record = await self._open_record(person_id)
        if isinstance(record, Erased):
            # Deriving from the AHVN13 alone instead would hand out recomputable pseudonyms.
            raise TransientError("the person was erased while their request was being resolved")
        if record is None:
            raise PermanentError(f"no person {person_id}")
        return basis_of(record)

    async def record(self, person_id: uuid.UUID) -> Person | Erased | None:
        record = await self._open_record(person_id)
        if not isinstance(record, dict):
            return record
        # Without the seed: it is a key to the person's pseudonyms, not data about them.
        record.pop(SEED_FIELD, None)
        return Person.model_validate(record)

    async def _open_record(self, person_id: uuid.UUID) -> dict[str, Any] | Erased | None:
        sealed = await self._conn.fetchval("SELECT record FROM persons WHERE person_id = $1", person_id)
        if sealed is None:
            return None
        record: dict[str, Any] | Erased = await vault_store.open_json(
            self._conn, self.master, sealed, record_context(person_id)
        )
        return record

    async def _key(self, person_id: uuid.UUID) -> DataKey | Erased:
        key_id = await self._conn.fetchval("SELECT key_id FROM persons WHERE person_id = $1", person_id)
        if key_id is None:
            raise PermanentError(f"person {person_id} has no data key")
        keys = await vault_store.keys_by_id(self._conn, self.master, [key_id])
        return keys[key_id]

    async def link_local_id(self, person_id: uuid.UUID, local_id: LocalPersonId) -> None:
        key = await self._key(person_id)
        if isinstance(key, Erased):
            return  # nothing may be added to an erased person
        index = local_id_index(self.master, local_id)
        # An id already linked to someone keeps its link: local ids are unique per register.
        await self._conn.execute(
            """
            INSERT INTO local_person_ids (category, local_id_index, local_id_sealed, person_id)
            VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
            """,
            local_id.category,
            index,
            vault_store.seal_json(key, local_id.id, local_id_context(person_id, local_id.category, index)),
            person_id,
        )

    async def local_ids_of(self, person_id: uuid.UUID) -> list[LocalPersonId]:
        rows = await self._conn.fetch(
            "SELECT category, local_id_index, local_id_sealed, linked_at FROM local_person_ids "
            "WHERE person_id = $1",
            person_id,
        )
        sealed = [
            (row["local_id_sealed"], local_id_context(person_id, row["category"], row["local_id_index"]))
            for row in rows
        ]
        opened = await vault_store.open_json_many(self._conn, self.master, sealed)
        return newest_link_first(rows, opened)

    async def bind_citizen(self, person_id: uuid.UUID, citizen_id: str) -> None:
        # Rows other services sealed by citizen id (before they knew the person) join the
        # person's ring, and an erasure reaches them.
        key = await self._key(person_id)
        if not isinstance(key, Erased):
            await vault_store.bind(self._conn, citizen_ref(citizen_id), key.key_id)

    async def case_erased(self, case_id: str) -> bool:
        return await vault_store.is_erased(self._conn, case_ref(case_id))


class PostgresMatchReviews:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(
        self,
        *,
        new_person_id: uuid.UUID,
        candidate_person_id: uuid.UUID,
        reason: str,
        business_process_id: str,
    ) -> None:
        await self._conn.execute(
            """
            INSERT INTO match_reviews (new_person_id, candidate_person_id, reason, business_process_id)
            VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
            """,
            new_person_id,
            candidate_person_id,
            reason,
            business_process_id,
        )

    async def open(self) -> list[ListingRow]:
        rows = await self._conn.fetch(
            """
            SELECT id, new_person_id, candidate_person_id, reason, business_process_id, created_at
            FROM match_reviews WHERE NOT resolved ORDER BY created_at, id
            """
        )
        return [dict(row) for row in rows]
