"""Announces partners that never were: the seeded ones, or rows an operator inserted by hand.

Each is written to the outbox as ``PartnerRegistered`` and marked announced in one
transaction, so it is announced exactly once however often the service restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from hub.runtime.outbox import Transaction
from hub.runtime.telemetry import tracer
from services.identity import partner_repository as partners
from services.identity.partner_events import announce_registered

log = logging.getLogger(__name__)


class PartnerAnnouncer:
    def __init__(
        self, pool: asyncpg.Pool, *, source: str, interval_s: float = 10.0, batch: int = 100
    ) -> None:
        self._pool, self._source = pool, source
        self._interval_s, self._batch = interval_s, batch

    async def run(self, stop: asyncio.Event) -> None:
        # Migrations seed partners before workers start, so the first pass finds them;
        # later passes are a cheap safety net (a partial index covers the query).
        while not stop.is_set():
            try:
                while await self.announce_pending() == self._batch:
                    pass
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("announcing partners failed, retrying: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def announce_pending(self) -> int:
        """Announce up to one batch of unannounced partners; returns how many were announced."""
        with tracer().start_as_current_span("announce partners") as span:
            async with self._pool.acquire() as conn, conn.transaction():
                tx = Transaction(conn, source=self._source)
                announced = 0
                for partner in await partners.claim_unannounced(tx, self._batch):
                    try:
                        await announce_registered(tx, partner)
                        announced += 1
                    except ValueError as error:
                        # A hand-written row the contract refuses must not stop the service
                        # (a crashed worker stops it); it stays unannounced until fixed.
                        log.error("partner %s cannot be announced: %s", partner.partner_id, error)
            span.set_attribute("hub.partners_announced", announced)
        if announced:
            log.info("announced %d partners", announced)
        return announced
