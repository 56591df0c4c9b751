"""SQL of the identity service: persons, their local ids, and match reviews.

The AHVN13 lives in ``persons`` and nowhere else in the hub.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from contracts import LocalPersonId, Person
from hub.messages import Transaction


async def person_by_vn(tx: Transaction, vn: str) -> uuid.UUID | None:
    person_id: uuid.UUID | None = await tx.conn.fetchval("SELECT person_id FROM persons WHERE vn = $1", vn)
    return person_id


async def person_by_local_id(tx: Transaction, local_id: LocalPersonId) -> uuid.UUID | None:
    person_id: uuid.UUID | None = await tx.conn.fetchval(
        "SELECT person_id FROM local_person_ids WHERE category = $1 AND local_id = $2",
        local_id.category,
        local_id.id,
    )
    return person_id


async def names_born_on(tx: Transaction, date_of_birth: dt.date) -> list[tuple[uuid.UUID, str, str]]:
    """Everyone born that day, with their names: the domain decides who looks alike."""
    rows = await tx.conn.fetch(
        "SELECT person_id, official_name, first_name FROM persons WHERE date_of_birth = $1 "
        "ORDER BY created_at",
        date_of_birth,
    )
    return [(row["person_id"], row["official_name"], row["first_name"]) for row in rows]


async def vn_of(tx: Transaction, person_id: uuid.UUID, fallback: str) -> str:
    """The person's AHVN13 as first recorded; a person found by local id may not have had one."""
    vn: str = await tx.conn.fetchval(
        "UPDATE persons SET vn = coalesce(vn, $2) WHERE person_id = $1 RETURNING vn", person_id, fallback
    )
    return vn


async def insert_person(tx: Transaction, person: Person) -> uuid.UUID:
    person_id = uuid.uuid4()
    await tx.conn.execute(
        """
        INSERT INTO persons (person_id, vn, official_name, first_name, sex, date_of_birth)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        person_id,
        person.vn,
        person.official_name,
        person.first_name,
        person.sex.value,
        person.date_of_birth,
    )
    return person_id


async def link_local_id(tx: Transaction, person_id: uuid.UUID, local_id: LocalPersonId) -> None:
    # An id already linked to someone keeps its link: local ids are unique per register.
    await tx.conn.execute(
        "INSERT INTO local_person_ids (category, local_id, person_id) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        local_id.category,
        local_id.id,
        person_id,
    )


async def local_ids_of(tx: Transaction, person_id: uuid.UUID) -> list[LocalPersonId]:
    """Newest link first, so a register's renumbered id wins over its old one."""
    rows = await tx.conn.fetch(
        "SELECT category, local_id FROM local_person_ids WHERE person_id = $1 "
        "ORDER BY linked_at DESC, local_id",
        person_id,
    )
    return [LocalPersonId(category=row["category"], id=row["local_id"]) for row in rows]


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
