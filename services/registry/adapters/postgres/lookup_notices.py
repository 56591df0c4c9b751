"""Cross-replica invalidation of the registry's ``LookupCache``: LISTEN for the tables' notices.

Admin events reach one replica of a consumer group only, so the others learn of a change
from the database: the triggers of migration 0016 NOTIFY ``lookups_<schema>`` when a
change to partners, keys, subscriptions or the catalogue commits, whoever made it. LISTEN
over a trigger rather than a version row read by every unit of work: a version check
would cost a query per event, which is what the cache is there to save, while a notice
costs nothing until something changes. A notice arrives within milliseconds of the commit;
while the listener is not connected (the database restarting), nothing is announced, so
the cache is dropped whenever listening (re)starts, and entries' age limit (``ttl_s``)
bounds what a replica can miss meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from hub.runtime.db import DATABASE_FAILURES
from services.registry.lookups import LookupCache

log = logging.getLogger(__name__)


def channel(schema: str) -> str:
    """The channel the triggers of ``schema`` announce changes on."""
    return f"lookups_{schema}"


class LookupNotices:
    """A service worker: drops ``cache`` whenever the database announces a change."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: LookupCache,
        *,
        schema: str,
        check_interval_s: float = 5.0,
        retry_s: float = 1.0,
    ) -> None:
        self._pool, self.cache = pool, cache
        self._channel = channel(schema)
        # How often the listening connection is used, so that one that died quietly is found.
        self._check_interval_s = check_interval_s
        self._retry_s = retry_s
        # Set while notices arrive (tests wait for it before relying on them).
        self.listening = asyncio.Event()
        self.notices = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop``; a lost connection is re-established, never the service's end."""
        while not stop.is_set():
            try:
                await self._listen_until_lost(stop)
            except DATABASE_FAILURES as error:
                log.warning("registry cache: not listening for changes, retrying: %s", error)
            # Whatever was announced while not listening went unheard.
            self.cache.invalidate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._retry_s)

    async def _listen_until_lost(self, stop: asyncio.Event) -> None:
        connection: asyncpg.Connection = await self._pool.acquire()
        try:
            await connection.add_listener(self._channel, self._notified)
            try:
                # Changes committed before the LISTEN took effect were announced to nobody here.
                self.cache.invalidate()
                self.listening.set()
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self._check_interval_s)
                    if stop.is_set():
                        return
                    await connection.fetchval("SELECT 1")
            finally:
                self.listening.clear()
                # A connection going back to the pool with a listener attached is an error to
                # asyncpg; a dead one (database restarted) must not fail the worker here.
                with contextlib.suppress(*DATABASE_FAILURES):
                    await connection.remove_listener(self._channel, self._notified)
        finally:
            with contextlib.suppress(*DATABASE_FAILURES):
                await self._pool.release(connection)

    def _notified(self, _connection: object, _pid: int, _channel: str, table: object) -> None:
        self.notices += 1
        log.debug("registry cache: %s changed, dropped", table)
        self.cache.invalidate()
