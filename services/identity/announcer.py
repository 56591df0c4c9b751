"""Announces partners that never were: the seeded ones, or rows an operator inserted by hand.

Each is written to the outbox as ``PartnerRegistered`` and marked announced in one unit of
work, so it is announced exactly once however often the service restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hub.errors import DatabaseUnavailable
from hub.runtime.telemetry import tracer
from services.identity.partner_events import announce_pending
from services.identity.ports import UnitsOfWork

log = logging.getLogger(__name__)


class PartnerAnnouncer:
    def __init__(self, units: UnitsOfWork, *, interval_s: float = 10.0, batch: int = 100) -> None:
        self._units = units
        self._interval_s, self._batch = interval_s, batch

    async def run(self, stop: asyncio.Event) -> None:
        # Migrations seed partners before workers start, so the first pass finds them;
        # later passes are a cheap safety net (a partial index covers the query).
        while not stop.is_set():
            try:
                while await self.announce_pending() == self._batch:
                    pass
            except DatabaseUnavailable as error:
                log.warning("announcing partners failed, retrying: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)

    async def announce_pending(self) -> int:
        """Announce up to one batch of unannounced partners; returns how many were announced."""
        with tracer().start_as_current_span("announce partners") as span:
            async with self._units.begin() as uow:
                announced = await announce_pending(uow, batch=self._batch)
            span.set_attribute("hub.partners_announced", announced)
        if announced:
            log.info("announced %d partners", announced)
        return announced
