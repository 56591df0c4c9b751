"""Sector key versions and issued pseudonyms, in identity's tables.

Only key versions are stored; the key bytes are derived from the pseudonym secret, which
never reaches the database.
"""

from __future__ import annotations

import uuid

import asyncpg


class PostgresPseudonyms:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def current_version(self, sector: str) -> int:
        await self._conn.execute(
            "INSERT INTO sector_keys (sector, version) VALUES ($1, 1) ON CONFLICT DO NOTHING", sector
        )
        version: int = await self._conn.fetchval(
            "SELECT version FROM sector_keys WHERE sector = $1 AND retired_at IS NULL", sector
        )
        return version

    async def rotate(self, sector: str) -> int:
        # Serialises rotations of one sector: each sees the version the previous one created.
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('identity.sector_keys:' || $1, 0))", sector
        )
        current = await self.current_version(sector)
        await self._conn.execute(
            "UPDATE sector_keys SET retired_at = now() WHERE sector = $1 AND version = $2", sector, current
        )
        await self._conn.execute(
            "INSERT INTO sector_keys (sector, version) VALUES ($1, $2)", sector, current + 1
        )
        return current + 1

    async def issued(self, person_id: uuid.UUID, sector: str) -> str | None:
        pseudonym: str | None = await self._conn.fetchval(
            "SELECT pseudonym FROM issued_pseudonyms WHERE person_id = $1 AND sector = $2", person_id, sector
        )
        return pseudonym

    async def record(self, person_id: uuid.UUID, sector: str, pseudonym: str, key_version: int) -> str:
        inserted: str | None = await self._conn.fetchval(
            "INSERT INTO issued_pseudonyms (person_id, sector, pseudonym, key_version) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING pseudonym",
            person_id,
            sector,
            pseudonym,
            key_version,
        )
        if inserted is not None:
            return inserted
        # Not inserted: the pair has its pseudonym already (perhaps of a concurrent request).
        stored = await self.issued(person_id, sector)
        assert stored is not None  # inserted now, or by a transaction that committed first
        return stored
