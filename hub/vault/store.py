"""The vault's tables: finding, creating, linking and destroying data keys; sealed JSON.

SQL is qualified with ``vault.``: every service reaches the shared schema from its own
connection and transaction, so a key is created or linked atomically with the row it
protects. Keys are not cached: every read asks the table, so a destroyed key stops
working in every running process at the moment the erasure commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from hub.errors import ConfigurationError
from hub.vault.crypto import (
    DataKey,
    Erased,
    MasterKey,
    TamperedCiphertext,
    key_id_of,
    new_data_key,
    seal,
    tombstone,
    unseal,
)

CASE_PREFIX = "case:"
Key = DataKey | Erased


@dataclass(frozen=True)
class Destruction:
    keys: int  # data keys destroyed now
    case_ids: tuple[str, ...]  # the cases whose data those keys protected


def _usable(master: MasterKey, row: asyncpg.Record) -> DataKey | Erased:
    if row["wrapped"] is None:
        return Erased(row["key_id"])
    # Any version of the ring unwraps: during a rotation both old and new wrappings exist.
    if not master.knows(row["master_key_id"]):
        raise ConfigurationError(
            f"data key {row['key_id']} was wrapped by master key {row['master_key_id']}, "
            f"not in this process's ring (current {master.key_id}; HUB_MASTER_KEY_FILE)"
        )
    return master.unwrap(row["key_id"], bytes(row["wrapped"]), row["master_key_id"])


async def key_for(conn: asyncpg.Connection, master: MasterKey, ref: str) -> DataKey | Erased:
    """The key ``ref`` names, created (as a ring of its own) if there is none yet."""
    found = await _lookup(conn, master, ref)
    if found is not None:
        return found
    key = new_data_key()
    master_key_id, wrapped = master.wrap_current(key)
    await conn.execute(
        "INSERT INTO vault.data_keys (key_id, ring, wrapped, master_key_id) VALUES ($1, $1, $2, $3)",
        key.key_id,
        wrapped,
        master_key_id,
    )
    bound = await conn.fetchval(
        "INSERT INTO vault.key_refs (ref, key_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING key_id",
        ref,
        key.key_id,
    )
    if bound is not None:
        return key
    # A concurrent writer created the reference first (we waited for its commit): use its key.
    await conn.execute("DELETE FROM vault.data_keys WHERE key_id = $1", key.key_id)
    found = await _lookup(conn, master, ref)
    assert found is not None
    return found


async def existing_key(conn: asyncpg.Connection, master: MasterKey, ref: str) -> DataKey | Erased | None:
    return await _lookup(conn, master, ref)


async def _lookup(conn: asyncpg.Connection, master: MasterKey, ref: str) -> DataKey | Erased | None:
    row = await conn.fetchrow(
        "SELECT k.key_id, k.wrapped, k.master_key_id FROM vault.key_refs r "
        "JOIN vault.data_keys k USING (key_id) WHERE r.ref = $1",
        ref,
    )
    return None if row is None else _usable(master, row)


async def is_erased(conn: asyncpg.Connection, ref: str) -> bool:
    destroyed: bool | None = await conn.fetchval(
        "SELECT k.destroyed_at IS NOT NULL FROM vault.key_refs r JOIN vault.data_keys k USING (key_id) "
        "WHERE r.ref = $1",
        ref,
    )
    return bool(destroyed)


async def bind(conn: asyncpg.Connection, ref: str, key_id: uuid.UUID) -> None:
    """Let ``ref`` name the key ``key_id`` (same person). If it names another key already,
    the two keys' rings become one; if that other ring is erased, ``key_id``'s ring is
    destroyed too: data linked to an erased person is erased."""
    bound = await conn.fetchval(
        "INSERT INTO vault.key_refs (ref, key_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING key_id",
        ref,
        key_id,
    )
    if bound is not None:
        return
    other: uuid.UUID = await conn.fetchval("SELECT key_id FROM vault.key_refs WHERE ref = $1", ref)
    if other == key_id:
        return
    rows = await conn.fetch(
        """
        SELECT key_id, ring, destroyed_at FROM vault.data_keys
        WHERE ring IN (SELECT ring FROM vault.data_keys WHERE key_id = ANY($1::uuid[]))
        ORDER BY key_id FOR UPDATE
        """,
        [key_id, other],
    )
    ring_of = {row["key_id"]: row["ring"] for row in rows}
    mine, theirs = ring_of[key_id], ring_of[other]
    if mine == theirs:
        return
    if any(row["destroyed_at"] is not None for row in rows if row["ring"] == theirs):
        await _shred(conn, [mine])
    await conn.execute("UPDATE vault.data_keys SET ring = $2 WHERE ring = $1", mine, theirs)


async def destroy(
    conn: asyncpg.Connection, *, refs: Iterable[str] = (), key_ids: Iterable[uuid.UUID] = ()
) -> Destruction:
    """Crypto-shred: every key in the rings of ``refs`` and ``key_ids``.

    Wrapped keys are overwritten; the references that identify the person (subject,
    citizen) are deleted; case references stay, pointing at destroyed keys, so a later
    event of such a case is recognised as erased.
    """
    rings: list[uuid.UUID] = [
        row["ring"]
        for row in await conn.fetch(
            """
            SELECT DISTINCT k.ring FROM vault.data_keys k
            WHERE k.key_id = ANY($2::uuid[])
               OR k.key_id IN (SELECT key_id FROM vault.key_refs WHERE ref = ANY($1::text[]))
            """,
            list(refs),
            list(key_ids),
        )
    ]
    if not rings:
        return Destruction(0, ())
    return await _shred(conn, rings)


async def _shred(conn: asyncpg.Connection, rings: Sequence[uuid.UUID]) -> Destruction:
    destroyed = await _destroy_rings(conn, rings)
    members = "SELECT key_id FROM vault.data_keys WHERE ring = ANY($1::uuid[])"
    cases = await conn.fetch(
        f"SELECT ref FROM vault.key_refs WHERE key_id IN ({members}) AND starts_with(ref, $2) ORDER BY ref",
        list(rings),
        CASE_PREFIX,
    )
    # What identifies the person goes: the same AHVN13 or citizen id later gets a new key.
    await conn.execute(
        f"DELETE FROM vault.key_refs WHERE key_id IN ({members}) AND NOT starts_with(ref, $2)",
        list(rings),
        CASE_PREFIX,
    )
    return Destruction(destroyed, tuple(row["ref"].removeprefix(CASE_PREFIX) for row in cases))


async def _destroy_rings(conn: asyncpg.Connection, rings: Sequence[uuid.UUID]) -> int:
    destroyed = 0
    # Repeated until nothing is left: a ring merged into one of these by a transaction that
    # committed while we waited for its locks is seen by the next statement's snapshot.
    while True:
        live = await conn.fetch(
            "SELECT key_id FROM vault.data_keys WHERE ring = ANY($1::uuid[]) AND destroyed_at IS NULL "
            "ORDER BY key_id FOR UPDATE",
            list(rings),
        )
        if not live:
            return destroyed
        await conn.execute(
            "UPDATE vault.data_keys SET wrapped = NULL, destroyed_at = now() WHERE key_id = ANY($1::uuid[])",
            [row["key_id"] for row in live],
        )
        destroyed += len(live)


async def keys_by_id(
    conn: asyncpg.Connection, master: MasterKey, key_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, DataKey | Erased]:
    """Unknown ids read as erased: a key row is never removed, only destroyed."""
    wanted = set(key_ids)
    rows = await conn.fetch(
        "SELECT key_id, wrapped, master_key_id FROM vault.data_keys WHERE key_id = ANY($1::uuid[])",
        list(wanted),
    )
    keys: dict[uuid.UUID, DataKey | Erased] = {row["key_id"]: _usable(master, row) for row in rows}
    return {key_id: keys.get(key_id, Erased(key_id)) for key_id in wanted}


def seal_json(key: DataKey | Erased, value: Any, context: str) -> bytes:
    """``value`` as JSON under ``key``; under an erased key, a tombstone that reads as erased."""
    if isinstance(key, Erased):
        return tombstone(key.key_id)
    return seal(key, json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), context)


async def open_json(conn: asyncpg.Connection, master: MasterKey, blob: bytes, context: str) -> Any:
    """The value, or ``Erased``; raises ``TamperedCiphertext`` if the blob was changed or moved."""
    [value] = await open_json_many(conn, master, [(blob, context)])
    return value


async def open_json_many(
    conn: asyncpg.Connection, master: MasterKey, sealed: Sequence[tuple[bytes, str]]
) -> list[Any]:
    """Each (blob, context) opened, with one key lookup for all of them; the first value
    that fails authentication raises ``TamperedCiphertext``."""
    opened = await open_json_each(conn, master, sealed)
    for value in opened:
        if isinstance(value, TamperedCiphertext):
            raise value
    return opened


async def open_json_each(
    conn: asyncpg.Connection, master: MasterKey, sealed: Sequence[tuple[bytes, str]]
) -> list[Any]:
    """Like ``open_json_many``, but a value that fails authentication comes back as its
    ``TamperedCiphertext`` instead of raising: for a batch where one bad row must not stop
    the others (the dispatcher)."""
    blobs = [(bytes(blob), context) for blob, context in sealed]
    key_ids: list[uuid.UUID | TamperedCiphertext] = []
    for blob, _ in blobs:
        try:
            key_ids.append(key_id_of(blob))
        except TamperedCiphertext as error:
            key_ids.append(error)
    keys = await keys_by_id(conn, master, {k for k in key_ids if isinstance(k, uuid.UUID)})
    opened: list[Any] = []
    for (blob, context), key_id in zip(blobs, key_ids, strict=True):
        key = key_id if isinstance(key_id, TamperedCiphertext) else keys[key_id]
        if isinstance(key, (Erased, TamperedCiphertext)):
            opened.append(key)
            continue
        try:
            opened.append(json.loads(unseal(key, blob, context)))
        except TamperedCiphertext as error:
            opened.append(error)
    return opened
