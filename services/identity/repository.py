"""SQL of the identity service: persons, their local ids, and match reviews.

The AHVN13 lives in ``persons`` and nowhere else in the hub, and even there only sealed:
a person's AHVN13, names, sex and date of birth are one sealed ``record`` under the
person's data key (``hub/vault.py``), a local register id is sealed in its row. Lookups
go through blind indexes (keyed hashes, equality only). Rows stored before migration 0004
keep plain columns until ``seal_legacy_person`` seals them (at start, or when first used).

The record also holds the person's pseudonym seed (``domain.sector_pseudonym``), so that
destroying the data key destroys the seed too: an erased person's pseudonyms can never be
derived again. Persons stored before seeds existed have none and keep the legacy
derivation; sealing a legacy row adds none, so all of a person's pseudonyms follow one rule.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import asyncpg

from contracts import LocalPersonId, Person
from hub.errors import PermanentError, TransientError
from hub.runtime.outbox import Transaction
from hub.vault import store as vault_store
from hub.vault.crypto import DataKey, Erased, MasterKey, citizen_ref
from hub.vault.master import installed
from services.identity.domain import PseudonymBasis

CITIZEN_SECTOR = "citizen-services"
SEED_FIELD = "pseudonym_seed"  # in the sealed record, base64; absent: a person from before seeds


def record_context(person_id: uuid.UUID) -> str:
    """Binds a sealed record to its table, column and row: moved elsewhere, it fails to open."""
    return f"identity.persons.record:{person_id}"


def local_id_context(person_id: uuid.UUID, category: str, index: str) -> str:
    return f"identity.local_person_ids.local_id_sealed:{person_id}:{category}:{index}"


def vn_index(master: MasterKey, vn: str) -> str:
    return master.blind_index("identity.vn", vn)


def _dob_index(master: MasterKey, date_of_birth: dt.date) -> str:
    return master.blind_index("identity.date-of-birth", date_of_birth.isoformat())


def _local_id_index(master: MasterKey, local_id: LocalPersonId) -> str:
    return master.blind_index("identity.local-id", f"{local_id.category}\x1f{local_id.id}")


def _record(person: Person, pseudonym_seed: bytes) -> dict[str, str]:
    return {
        "vn": person.vn,
        "official_name": person.official_name,
        "first_name": person.first_name,
        "sex": person.sex.value,
        "date_of_birth": person.date_of_birth.isoformat(),
        SEED_FIELD: base64.b64encode(pseudonym_seed).decode(),
    }


async def person_by_vn(tx: Transaction, vn: str) -> uuid.UUID | None:
    person_id: uuid.UUID | None = await tx.conn.fetchval(
        "SELECT person_id FROM persons WHERE vn_index = $1 OR (record IS NULL AND vn = $2)",
        vn_index(installed(), vn),
        vn,
    )
    return person_id


async def person_by_local_id(tx: Transaction, local_id: LocalPersonId) -> uuid.UUID | None:
    person_id: uuid.UUID | None = await tx.conn.fetchval(
        "SELECT person_id FROM local_person_ids WHERE category = $1 "
        "AND (local_id_index = $2 OR (local_id_sealed IS NULL AND local_id = $3))",
        local_id.category,
        _local_id_index(installed(), local_id),
        local_id.id,
    )
    return person_id


async def names_born_on(tx: Transaction, date_of_birth: dt.date) -> list[tuple[uuid.UUID, str, str]]:
    """Everyone born that day, with their names: the domain decides who looks alike."""
    rows = await tx.conn.fetch(
        "SELECT person_id, record, official_name, first_name FROM persons "
        "WHERE dob_index = $1 OR (record IS NULL AND date_of_birth = $2) ORDER BY created_at",
        _dob_index(installed(), date_of_birth),
        date_of_birth,
    )
    sealed = [(row["record"], record_context(row["person_id"])) for row in rows if row["record"] is not None]
    records = iter(await vault_store.open_json_many(tx.conn, installed(), sealed))
    found = []
    for row in rows:
        names = (row["official_name"], row["first_name"])
        if row["record"] is not None:
            record = next(records)
            if isinstance(record, Erased):
                continue
            names = (record["official_name"], record["first_name"])
        found.append((row["person_id"], *names))
    return found


async def pseudonym_basis(tx: Transaction, person_id: uuid.UUID, fallback_vn: str) -> PseudonymBasis:
    """What the person's pseudonyms derive from: the AHVN13 as first recorded (a person found
    by local id may not have had one: then ``fallback_vn``) and their seed, if they have one.

    Raises ``TransientError`` if the person was erased after being found: a retry no longer
    finds them, and deriving the legacy way instead would hand out recomputable pseudonyms.
    """
    record = await _open_record(tx, person_id)
    if isinstance(record, Erased):
        raise TransientError("the person was erased while their request was being resolved")
    if record is not None:
        seed = record.get(SEED_FIELD)
        return PseudonymBasis(record["vn"], None if seed is None else base64.b64decode(seed))
    # Stored before migration 0004: the plain column, as it always was, and no seed.
    stored: str | None = await tx.conn.fetchval(
        "UPDATE persons SET vn = coalesce(vn, $2) WHERE person_id = $1 AND record IS NULL RETURNING vn",
        person_id,
        fallback_vn,
    )
    return PseudonymBasis(stored or fallback_vn, None)


async def person_record(tx: Transaction, person_id: uuid.UUID) -> dict[str, Any] | Erased | None:
    """The person's data from the sealed record; ``Erased`` once the person is erased; None
    for a row that is not sealed (yet) or no such person.

    Without the pseudonym seed: it is a key to the person's pseudonyms, not data about
    them, and only ``pseudonym_basis`` hands it out.
    """
    record = await _open_record(tx, person_id)
    if isinstance(record, dict):
        record.pop(SEED_FIELD, None)
    return record


async def _open_record(tx: Transaction, person_id: uuid.UUID) -> dict[str, Any] | Erased | None:
    sealed = await tx.conn.fetchval("SELECT record FROM persons WHERE person_id = $1", person_id)
    if sealed is None:
        return None
    record: dict[str, Any] | Erased = await vault_store.open_json(
        tx.conn, installed(), sealed, record_context(person_id)
    )
    return record


async def insert_person(tx: Transaction, person: Person, *, pseudonym_seed: bytes) -> uuid.UUID:
    """A new person, sealed with their pseudonym seed under their data key."""
    master = installed()
    person_id = uuid.uuid4()
    # The same key the registry sealed the person's case under (hub/vault.py, subject reference).
    key = await vault_store.key_for(tx.conn, master, master.subject_ref(person.vn))
    if isinstance(key, Erased):  # erasure deletes subject references, so this is a bug
        raise PermanentError("the person's subject reference names a destroyed key")
    await tx.conn.execute(
        """
        INSERT INTO persons (person_id, key_id, record, vn_index, dob_index)
        VALUES ($1, $2, $3, $4, $5)
        """,
        person_id,
        key.key_id,
        vault_store.seal_json(key, _record(person, pseudonym_seed), record_context(person_id)),
        vn_index(master, person.vn),
        _dob_index(master, person.date_of_birth),
    )
    return person_id


async def person_key(tx: Transaction, person_id: uuid.UUID) -> DataKey | Erased:
    """The person's data key; a row stored before migration 0004 is sealed first."""
    key_id = await tx.conn.fetchval("SELECT key_id FROM persons WHERE person_id = $1", person_id)
    if key_id is None:
        await seal_legacy_person(tx.conn, person_id)
        key_id = await tx.conn.fetchval("SELECT key_id FROM persons WHERE person_id = $1", person_id)
    if key_id is None:
        raise PermanentError(f"person {person_id} has no data key")
    keys = await vault_store.keys_by_id(tx.conn, installed(), [key_id])
    return keys[key_id]


async def link_local_id(tx: Transaction, person_id: uuid.UUID, local_id: LocalPersonId) -> None:
    # An id already linked to someone keeps its link: local ids are unique per register.
    master = installed()
    key = await person_key(tx, person_id)
    if isinstance(key, Erased):
        return  # nothing may be added to an erased person
    index = _local_id_index(master, local_id)
    await tx.conn.execute(
        """
        INSERT INTO local_person_ids (category, local_id_index, local_id_sealed, person_id)
        SELECT $1, $2, $3, $4
        WHERE NOT EXISTS (SELECT 1 FROM local_person_ids
                          WHERE category = $1 AND local_id_sealed IS NULL AND local_id = $5)
        ON CONFLICT DO NOTHING
        """,
        local_id.category,
        index,
        vault_store.seal_json(key, local_id.id, local_id_context(person_id, local_id.category, index)),
        person_id,
        local_id.id,
    )


async def local_ids_of(tx: Transaction, person_id: uuid.UUID) -> list[LocalPersonId]:
    """Newest link first, so a register's renumbered id wins over its old one."""
    rows = await tx.conn.fetch(
        "SELECT category, local_id, local_id_index, local_id_sealed, linked_at FROM local_person_ids "
        "WHERE person_id = $1",
        person_id,
    )
    sealed = [
        (row["local_id_sealed"], local_id_context(person_id, row["category"], row["local_id_index"]))
        for row in rows
        if row["local_id_sealed"] is not None
    ]
    opened = iter(await vault_store.open_json_many(tx.conn, installed(), sealed))
    found: list[tuple[dt.datetime, LocalPersonId]] = []
    for row in rows:
        value = next(opened) if row["local_id_sealed"] is not None else row["local_id"]
        if not isinstance(value, Erased):
            found.append((row["linked_at"], LocalPersonId(category=row["category"], id=value)))
    found.sort(key=lambda pair: pair[1].id)
    found.sort(key=lambda pair: pair[0], reverse=True)  # stable: ties stay ordered by id
    return [local_id for _, local_id in found]


async def bind_citizen(tx: Transaction, person_id: uuid.UUID, citizen_id: str) -> None:
    """The citizen id names the person's key too: rows other services sealed by citizen id
    (before they knew the person) join the person's ring, and an erasure reaches them."""
    key = await person_key(tx, person_id)
    if not isinstance(key, Erased):
        await vault_store.bind(tx.conn, citizen_ref(citizen_id), key.key_id)


async def seal_legacy_person(conn: asyncpg.Connection, person_id: uuid.UUID) -> bool:
    """Seal a person (and their local ids) stored before migration 0004; False if nothing to do."""
    master = installed()
    row = await conn.fetchrow(
        "SELECT vn, official_name, first_name, sex, date_of_birth FROM persons "
        "WHERE person_id = $1 AND record IS NULL AND erased_at IS NULL FOR UPDATE",
        person_id,
    )
    if row is None:
        return False
    ref = master.subject_ref(row["vn"]) if row["vn"] else f"person:{person_id}"
    key = await vault_store.key_for(conn, master, ref)
    if isinstance(key, Erased):
        raise PermanentError(f"person {person_id}: reference {ref.split(':')[0]} names a destroyed key")
    record = {name: row[name] for name in ("vn", "official_name", "first_name", "sex")}
    record["date_of_birth"] = row["date_of_birth"].isoformat()
    await conn.execute(
        """
        UPDATE persons SET key_id = $2, record = $3, vn_index = $4, dob_index = $5,
               vn = NULL, official_name = NULL, first_name = NULL, sex = NULL, date_of_birth = NULL
        WHERE person_id = $1
        """,
        person_id,
        key.key_id,
        vault_store.seal_json(key, record, record_context(person_id)),
        vn_index(master, row["vn"]) if row["vn"] else None,
        _dob_index(master, row["date_of_birth"]),
    )
    for local in await conn.fetch(
        "SELECT id, category, local_id FROM local_person_ids "
        "WHERE person_id = $1 AND local_id_sealed IS NULL",
        person_id,
    ):
        index = _local_id_index(master, LocalPersonId(category=local["category"], id=local["local_id"]))
        context = local_id_context(person_id, local["category"], index)
        await conn.execute(
            "UPDATE local_person_ids SET local_id_index = $2, local_id_sealed = $3, local_id = NULL "
            "WHERE id = $1",
            local["id"],
            index,
            vault_store.seal_json(key, local["local_id"], context),
        )
    for citizen_id in await citizen_ids_of(conn, person_id):
        await vault_store.bind(conn, citizen_ref(citizen_id), key.key_id)
    return True


async def citizen_ids_of(conn: asyncpg.Connection, person_id: uuid.UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT pseudonym FROM issued_pseudonyms WHERE person_id = $1 AND sector = $2",
        person_id,
        CITIZEN_SECTOR,
    )
    return [row["pseudonym"] for row in rows]


async def person_by_citizen_id(conn: asyncpg.Connection, citizen_id: str) -> uuid.UUID | None:
    # Before pseudonym seeds, a person who came back after an erasure got the erased one's
    # citizen id again, and such rows may still be stored: only the one not erased counts.
    person_id: uuid.UUID | None = await conn.fetchval(
        "SELECT person_id FROM issued_pseudonyms JOIN persons USING (person_id) "
        "WHERE sector = $1 AND pseudonym = $2 AND erased_at IS NULL",
        CITIZEN_SECTOR,
        citizen_id,
    )
    return person_id


async def forget(conn: asyncpg.Connection, person_id: uuid.UUID) -> None:
    """After the person's keys are destroyed: drop what could still find or show them.

    The row stays (pseudonyms and reviews refer to it) with its unreadable record; the
    indexes go, so the same AHVN13 later is a new person; local ids go entirely.
    """
    await conn.execute(
        """
        UPDATE persons SET vn = NULL, official_name = NULL, first_name = NULL, sex = NULL,
               date_of_birth = NULL, vn_index = NULL, dob_index = NULL, erased_at = now()
        WHERE person_id = $1
        """,
        person_id,
    )
    await conn.execute("DELETE FROM local_person_ids WHERE person_id = $1", person_id)


async def add_review(
    tx: Transaction,
    *,
    new_person_id: uuid.UUID,
    candidate_person_id: uuid.UUID,
    reason: str,
    business_process_id: str,
) -> None:
    await tx.conn.execute(
        """
        INSERT INTO match_reviews (new_person_id, candidate_person_id, reason, business_process_id)
        VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
        """,
        new_person_id,
        candidate_person_id,
        reason,
        business_process_id,
    )


async def open_reviews(tx: Transaction) -> list[dict[str, Any]]:
    """Ids, reason and case only: an operator looks the persons up where they may."""
    rows = await tx.conn.fetch(
        """
        SELECT id, new_person_id, candidate_person_id, reason, business_process_id, created_at
        FROM match_reviews WHERE NOT resolved ORDER BY created_at, id
        """
    )
    return [dict(row) for row in rows]
