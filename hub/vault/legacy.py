"""Sealing rows written before a service encrypted personal data at rest.

Migrations are SQL and never see the master key, so rows that predate a service's
"sealed" columns are sealed by the service itself once it runs: a worker repeats the
service's batch function until it finds nothing left, then ends. Until then reads accept
the old plaintext columns (each repository says how).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)

SealBatch = Callable[[asyncpg.Connection], Awaitable[int]]
"""Seals up to a batch of rows in the caller's transaction; returns how many."""


def legacy_sealer(
    pool: asyncpg.Pool, seal_batch: SealBatch, *, what: str, retry_s: float = 5.0
) -> Callable[[asyncio.Event], Awaitable[None]]:
    async def seal_legacy_rows(stop: asyncio.Event) -> None:
        total = 0
        while not stop.is_set():
            try:
                async with pool.acquire() as conn, conn.transaction():
                    sealed = await seal_batch(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("sealing %s written before encryption failed, retrying: %s", what, error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), retry_s)
                continue
            total += sealed
            if sealed == 0:
                break
        if total:
            log.info("sealed %d %s written before encryption at rest", total, what)

    return seal_legacy_rows
