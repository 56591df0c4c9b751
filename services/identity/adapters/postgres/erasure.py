"""identity's part of ``hub person erase``, in the erasing command's transaction.

Before the vault destroys the person's keys, ``locate`` finds them (by AHVN13 or citizen
id) and reads what reaches their keys from their record, which opens only until then.
Afterwards ``erase`` drops what could still find them: the row stays (pseudonyms and
reviews refer to it) with its unreadable record, the blind indexes go, so the same AHVN13
later is a new person, and their local ids go entirely.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Collection

import asyncpg

from contracts import Person
from hub.errors import HubError, SchemaMissing
from hub.runtime.db import connect
from hub.runtime.settings import HubSettings
from hub.vault.crypto import MasterKey, citizen_ref
from services.erasure import StoreReport
from services.identity.adapters.postgres.persons import PostgresPersons
from services.identity.adapters.postgres.units import SCHEMA
from services.identity.domain import CITIZEN_SECTOR
from services.identity.ports import ErasureSubject


class IdentityErasure:
    """``ports.LocatingErasure`` on identity's tables; ``erase`` forgets whom ``locate`` found."""

    def __init__(self, conn: asyncpg.Connection, master: MasterKey) -> None:
        self._conn, self._master = conn, master
        self._persons = PostgresPersons(conn, master)
        self._located: set[uuid.UUID] = set()

    async def locate(self, *, vn: str | None, citizen_id: str | None) -> ErasureSubject:
        refs: list[str] = []
        person_ids: set[uuid.UUID] = set()
        citizen_ids: set[str] = set()
        if vn is not None:
            # Also reaches cases identity has not seen yet: the registry keyed them by this reference.
            refs.append(self._master.subject_ref(vn))
            if (found := await self._persons.by_vn(vn)) is not None:
                person_ids.add(found)
        if citizen_id is not None:
            refs.append(citizen_ref(citizen_id))
            citizen_ids.add(citizen_id)
            if (found := await self._by_citizen_id(citizen_id)) is not None:
                person_ids.add(found)
        key_ids: list[uuid.UUID] = []
        for person_id in person_ids:
            citizen_ids.update(await self._citizen_ids_of(person_id))
            # The AHVN13 the person's subject reference derives from, read before the key goes.
            if isinstance(record := await self._persons.record(person_id), Person):
                refs.append(self._master.subject_ref(record.vn))
            key_id = await self._conn.fetchval("SELECT key_id FROM persons WHERE person_id = $1", person_id)
            if key_id is not None:
                key_ids.append(key_id)
        refs += [citizen_ref(c) for c in citizen_ids]
        self._located |= person_ids
        return ErasureSubject(frozenset(person_ids), frozenset(citizen_ids), tuple(refs), tuple(key_ids))

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        return set()  # identity keeps nothing by case

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        """The citizen ids identity holds are those of the persons ``locate`` found."""
        for person_id in self._located:
            await self._conn.execute(
                "UPDATE persons SET vn_index = NULL, dob_index = NULL, erased_at = now() "
                "WHERE person_id = $1",
                person_id,
            )
            await self._conn.execute("DELETE FROM local_person_ids WHERE person_id = $1", person_id)
        return [
            StoreReport(
                f"{SCHEMA}.persons", "record unreadable, lookups and local ids deleted", len(self._located)
            )
        ]

    async def _by_citizen_id(self, citizen_id: str) -> uuid.UUID | None:
        # An erased person is found by nothing, not even their citizen id.
        person_id: uuid.UUID | None = await self._conn.fetchval(
            "SELECT person_id FROM issued_pseudonyms JOIN persons USING (person_id) "
            "WHERE sector = $1 AND pseudonym = $2 AND erased_at IS NULL",
            CITIZEN_SECTOR,
            citizen_id,
        )
        return person_id

    async def _citizen_ids_of(self, person_id: uuid.UUID) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT pseudonym FROM issued_pseudonyms WHERE person_id = $1 AND sector = $2",
            person_id,
            CITIZEN_SECTOR,
        )
        return [row["pseudonym"] for row in rows]


@contextlib.asynccontextmanager
async def erasure_connection(settings: HubSettings) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own for ``hub person erase``, on identity's tables (the other
    services' are named with their schema); a missing table ends the command with one line."""
    conn = await connect(settings.database_dsn(), schema=SCHEMA, application_name="hub-erase")
    try:
        yield conn
    except SchemaMissing:
        raise HubError("the hub's services have not created their tables in this database") from None
    finally:
        await conn.close()
