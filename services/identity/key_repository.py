"""SQL of sector key versions and issued pseudonyms.

Only key versions are stored; the key bytes are derived from the master secret file.
"""

from __future__ import annotations

import uuid

from hub.runtime.outbox import Transaction


async def current_version(tx: Transaction, sector: str) -> int:
    """The version new (person, sector) pairs get; version 1 on a sector's first use."""
    await tx.conn.execute(
        "INSERT INTO sector_keys (sector, version) VALUES ($1, 1) ON CONFLICT DO NOTHING", sector
    )
    version: int = await tx.conn.fetchval(
        "SELECT version FROM sector_keys WHERE sector = $1 AND retired_at IS NULL", sector
    )
    return version


async def rotate(tx: Transaction, sector: str) -> int:
    """Retire the sector's current key and start the next version; returns the new version."""
    # Serialises rotations of one sector: each sees the version the previous one created.
    await tx.conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('identity.sector_keys:' || $1, 0))", sector
    )
    current = await current_version(tx, sector)
    await tx.conn.execute(
        "UPDATE sector_keys SET retired_at = now() WHERE sector = $1 AND version = $2", sector, current
    )
    await tx.conn.execute("INSERT INTO sector_keys (sector, version) VALUES ($1, $2)", sector, current + 1)
    return current + 1


async def issued_pseudonym(tx: Transaction, person_id: uuid.UUID, sector: str) -> str | None:
    pseudonym: str | None = await tx.conn.fetchval(
        "SELECT pseudonym FROM issued_pseudonyms WHERE person_id = $1 AND sector = $2", person_id, sector
    )
    return pseudonym


async def record_pseudonym(
    tx: Transaction, person_id: uuid.UUID, sector: str, pseudonym: str, key_version: int
) -> str:
    """Store the pair's pseudonym unless one is stored already; return the stored one.

    Two concurrent requests for a new pair may compute under different key versions;
    the first to commit wins and both return its pseudonym.
    """
    await tx.conn.execute(
        "INSERT INTO issued_pseudonyms (person_id, sector, pseudonym, key_version) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        person_id,
        sector,
        pseudonym,
        key_version,
    )
    stored = await issued_pseudonym(tx, person_id, sector)
    assert stored is not None  # inserted now, or by a transaction that committed first
    return stored
