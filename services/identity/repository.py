"""SQL of the identity service: persons and their identifiers."""

from __future__ import annotations

import uuid
from typing import Literal

from contracts import Person
from hub.messages import Transaction

Match = Literal["exact-vn", "local-id", "new"]


async def resolve_person(tx: Transaction, person: Person) -> tuple[uuid.UUID, Match]:
    """Exact AHVN13 first, then a known local id; otherwise a new person."""
    person_id = await tx.conn.fetchval("SELECT person_id FROM persons WHERE vn = $1", person.vn)
    if person_id is not None:
        await _link_local_id(tx, person, person_id)
        return person_id, "exact-vn"
    if person.local_person_id is not None:
        person_id = await tx.conn.fetchval(
            "SELECT person_id FROM local_person_ids WHERE category = $1 AND local_id = $2",
            person.local_person_id.category,
            person.local_person_id.id,
        )
        if person_id is not None:
            await tx.conn.execute(
                "UPDATE persons SET vn = $2 WHERE person_id = $1 AND vn IS NULL", person_id, person.vn
            )
            return person_id, "local-id"
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
    await _link_local_id(tx, person, person_id)
    return person_id, "new"


async def _link_local_id(tx: Transaction, person: Person, person_id: uuid.UUID) -> None:
    if person.local_person_id is None:
        return
    await tx.conn.execute(
        "INSERT INTO local_person_ids (category, local_id, person_id) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        person.local_person_id.category,
        person.local_person_id.id,
        person_id,
    )


async def record_pseudonym(tx: Transaction, person_id: uuid.UUID, sector: str, pseudonym: str) -> None:
    await tx.conn.execute(
        "INSERT INTO issued_pseudonyms (person_id, sector, pseudonym) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        person_id,
        sector,
        pseudonym,
    )
