"""Re-wrapping the vault's data keys under the current master key version, and counting them.

A rotation (``hub vault rotate-master-key``) makes a new master key version current, then
walks ``vault.data_keys`` in key-id order, a batch per short transaction: each live key
wrapped by an older version of the ring is unwrapped and wrapped again by the current
one. Services keep working meanwhile: they unwrap with any version of the ring and wrap
new keys with the current one. Rows are locked (``FOR UPDATE``) only for their batch;
a concurrent erasure waits for the batch or the batch waits for it, and a destroyed key
(``wrapped`` NULL) is never selected, so it stays destroyed. Nothing is remembered
between runs: the next run simply finds what is still wrapped by an older version, which
is what makes an interrupted rotation resumable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from hub.errors import DatabaseConflict, HubError
from hub.vault.crypto import MasterKey, TamperedCiphertext
from hub.vault.master import add_pending_version, ensure_index_root, load_ring, promote, retire_version

DEFAULT_BATCH = 500
_PASSES = 3  # a pass misses keys a lagging replica wrapped behind the cursor; rarely twice
_BEFORE_ALL = uuid.UUID(int=0)
_ATTEMPTS = 3  # a batch that lost a deadlock with a service's transaction is tried again


@dataclass(frozen=True)
class KeyCount:
    master_key_id: str
    live: int  # wrapped by it now
    destroyed: int  # erased; their wrapping is gone, the column only says what it was


@dataclass
class Rewrapped:
    rewrapped: int = 0
    batches: int = 0
    remaining: int = 0  # live keys still wrapped by older versions of the ring
    unopenable: set[uuid.UUID] = field(default_factory=set)  # failed to unwrap: left as they are
    finished: bool = False


class RotationRefused(HubError):
    """A rotation or retirement step that would lose data or skip the replicas' hand-over."""


@dataclass(frozen=True)
class Rotation:
    version: int  # the current version after this run (the pending one with ``prepared``)
    started: bool  # this run made ``version`` current; False: it finished an earlier rotation
    prepared: bool  # only a pending version was written (``--prepare``)
    keys: Rewrapped


@dataclass(frozen=True)
class VersionStatus:
    number: int
    key_id: str
    state: str  # current | pending | old
    live: int
    destroyed: int


@dataclass(frozen=True)
class VaultStatus:
    ring: Path
    versions: list[VersionStatus]
    foreign: list[KeyCount]  # keys wrapped by master keys that are not in the ring


async def rotate_master_key(
    conn: asyncpg.Connection,
    base: Path,
    *,
    prepare: bool = False,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> Rotation:
    """Make a new version current and re-wrap every live key under it; or, if an earlier
    rotation is unfinished (keys still under older versions), finish that one; or, with
    ``prepare``, only write the new version as pending, for replicas to load first.

    A pending version written earlier (``prepare``) is the one made current. Without one,
    the new version is written pending and promoted at once: services sharing the ring's
    directory load a version they meet and do not know (``MasterKey.knows``), so none of
    them can fail on a key wrapped by it.
    """
    ring = load_ring(base)
    foreign = [
        count for count in await key_counts(conn) if count.live and not ring.knows(count.master_key_id)
    ]
    if foreign:
        # Most likely this is not the services' ring (another HUB_MASTER_KEY_FILE): a new
        # version here would help nobody, and those keys could not be re-wrapped anyway.
        raise RotationRefused(
            f"{sum(count.live for count in foreign)} data key(s) are wrapped by master keys not in the "
            f"ring at {base} ({', '.join(count.master_key_id for count in foreign)}): is HUB_MASTER_KEY_FILE "
            "the services' ring?"
        )
    ensure_index_root(base)  # before any version may be retired: the blind indexes stay
    pending = [version.number for version in ring.versions() if version.pending]
    unfinished = await live_keys_under(conn, _older(ring))
    if prepare:
        if pending:
            raise RotationRefused(
                f"master key version {max(pending)} is pending already: give it to every service, "
                "then run `hub vault rotate-master-key`"
            )
        if unfinished:
            raise RotationRefused(_unfinished(ring, unfinished))
        number = add_pending_version(base)
        return Rotation(number, started=False, prepared=True, keys=Rewrapped())
    started = bool(pending) or not unfinished
    if pending:
        promote(base, max(pending))
    elif not unfinished:
        promote(base, add_pending_version(base))
    ring.reload()
    to_rewrap = await live_keys_under(conn, _older(ring))
    progress(f"master key version {ring.version} is current; {to_rewrap} data key(s) to re-wrap under it")
    keys = await rewrap(conn, ring, batch_size=batch_size, max_batches=max_batches, progress=progress)
    return Rotation(ring.version, started=started, prepared=False, keys=keys)


async def retire_master_key(
    conn: asyncpg.Connection, base: Path, number: int, *, delete: bool
) -> Path | None:
    """Remove version ``number`` from the ring, refusing while any live key uses it.
    Returns the ``.retired`` file (None if deleted)."""
    ring = load_ring(base)
    version = next((v for v in ring.versions() if v.number == number), None)
    if version is None:
        raise RotationRefused(f"no master key version {number} in the ring at {base}")
    if version.current:
        raise RotationRefused(f"master key version {number} is the current one: rotate to a new one first")
    live = await live_keys_under(conn, [version.key_id])
    if live:
        raise RotationRefused(
            f"master key version {number} still wraps {live} data key(s): "
            "run `hub vault rotate-master-key` to finish the rotation first"
        )
    return retire_version(base, number, delete=delete)


async def vault_status(conn: asyncpg.Connection, base: Path) -> VaultStatus:
    ring = load_ring(base)
    counts = {count.master_key_id: count for count in await key_counts(conn)}
    versions = []
    for version in ring.versions():
        count = counts.pop(version.key_id, KeyCount(version.key_id, 0, 0))
        state = "current" if version.current else "pending" if version.pending else "old"
        versions.append(VersionStatus(version.number, version.key_id, state, count.live, count.destroyed))
    return VaultStatus(base, versions, list(counts.values()))


def _unfinished(ring: MasterKey, keys: int) -> str:
    return (
        f"{keys} data key(s) are still wrapped by versions older than the current {ring.version}: "
        "run `hub vault rotate-master-key` to finish that rotation first"
    )


async def key_counts(conn: asyncpg.Connection) -> list[KeyCount]:
    rows = await conn.fetch(
        """
        SELECT master_key_id,
               count(*) FILTER (WHERE wrapped IS NOT NULL) AS live,
               count(*) FILTER (WHERE wrapped IS NULL) AS destroyed
        FROM vault.data_keys GROUP BY master_key_id ORDER BY master_key_id
        """
    )
    return [KeyCount(row["master_key_id"], row["live"], row["destroyed"]) for row in rows]


async def live_keys_under(conn: asyncpg.Connection, master_key_ids: Sequence[str]) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM vault.data_keys WHERE wrapped IS NOT NULL AND master_key_id = ANY($1::text[])",
        list(master_key_ids),
    )
    return count


async def rewrap(
    conn: asyncpg.Connection,
    master: MasterKey,
    *,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> Rewrapped:
    """Every live key wrapped by an older version of ``master``'s ring, wrapped again by
    the current one; stops early after ``max_batches`` (the next run goes on)."""
    done = Rewrapped()
    for _ in range(_PASSES):
        rewrapped_before = done.rewrapped
        # The nil UUID as the start: a plain range on the primary key in every batch
        # (``$1 IS NULL OR ...`` would cost a generic plan its index); uuid4 is never nil.
        after = _BEFORE_ALL
        while max_batches is None or done.batches < max_batches:
            batches_before = done.batches
            last = await _batch_with_retries(conn, master, after, batch_size, done)
            if done.batches > batches_before:
                # One line per batch: a ring of millions of keys takes a while, and each batch
                # is committed, so an operator sees how far it got if it stops.
                progress(f"batch {done.batches}: {done.rewrapped} data key(s) re-wrapped so far")
            if last is None:
                break
            after = last
        done.remaining = await live_keys_under(conn, _older(master))
        out_of_batches = max_batches is not None and done.batches >= max_batches
        if done.remaining == 0 or out_of_batches or done.rewrapped == rewrapped_before:
            break
    done.finished = done.remaining == 0
    return done


def _older(master: MasterKey) -> list[str]:
    return [version.key_id for version in master.versions() if version.key_id != master.key_id]


async def _batch_with_retries(
    conn: asyncpg.Connection, master: MasterKey, after: uuid.UUID, size: int, done: Rewrapped
) -> uuid.UUID | None:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return await _batch(conn, master, after, size, done)
        except DatabaseConflict:  # deadlock or serialization failure
            if attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _batch(
    conn: asyncpg.Connection, master: MasterKey, after: uuid.UUID, size: int, done: Rewrapped
) -> uuid.UUID | None:
    """One short transaction; returns the last key id looked at, None when the walk is done."""
    async with conn.transaction():
        rows = await conn.fetch(
            """
            SELECT key_id, wrapped, master_key_id FROM vault.data_keys
            WHERE key_id > $1 AND wrapped IS NOT NULL
              AND master_key_id = ANY($2::text[])
            ORDER BY key_id LIMIT $3 FOR UPDATE
            """,
            after,
            _older(master),
            size,
        )
        if not rows:
            return None
        key_ids: list[uuid.UUID] = []
        wrapped: list[bytes] = []
        wrapped_by: list[str] = []
        for row in rows:
            try:
                key = master.unwrap(row["key_id"], bytes(row["wrapped"]), row["master_key_id"])
            except TamperedCiphertext:
                done.unopenable.add(row["key_id"])
                continue
            master_key_id, blob = master.wrap_current(key)
            key_ids.append(key.key_id)
            wrapped.append(blob)
            wrapped_by.append(master_key_id)
        await conn.execute(
            """
            UPDATE vault.data_keys AS k SET wrapped = v.wrapped, master_key_id = v.master_key_id
            FROM unnest($1::uuid[], $2::bytea[], $3::text[]) AS v(key_id, wrapped, master_key_id)
            WHERE k.key_id = v.key_id AND k.wrapped IS NOT NULL
            """,
            key_ids,
            wrapped,
            wrapped_by,
        )
    done.rewrapped += len(key_ids)
    done.batches += 1
    last: uuid.UUID = rows[-1]["key_id"]
    return last if len(rows) == size else None
