"""Handlers and workers of notifications on the in-memory stores: no database, no broker."""

from __future__ import annotations

from typing import Any

from contracts import Contract, Envelope, Language, NotificationRequested, NotificationStatusChanged
from hub.runtime.messages import Incoming, RecordingEmitter
from services.notifications.adapters.memory import (
    ManualClock,
    MemoryStore,
    MemoryUnitOfWork,
    MemoryUnitsOfWork,
)

SOURCE = "urn:ch:lu:hub:service:notifications"
REGISTRY = "urn:ch:lu:hub:service:registry"
EMAIL = "anna.muster@example.ch"
PHONE = "+41791234567"
CITIZEN = "citizen-7"
PLACEHOLDERS = {
    "case_id": "eumzug-1",
    "case_type": "relocation",
    "step": "received",
    "first_name": "Anna",
    "official_name": "Muster",
    "milestone": "",
    "reason": "",
    "partner": "",
    "departure": "Kriens",
    "arrival": "Luzern",
    "move_date": "2026-12-01",
}


def request(notification_id: str = "eumzug-1:received", **changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "notification_id": notification_id,
        "recipient": EMAIL,
        "language": Language.DE,
        "template": "relocation.received",
        "placeholders": PLACEHOLDERS,
    }
    return NotificationRequested(**(fields | changes))


def incoming(
    data: Contract, *, case_id: str = "eumzug-1", test_delivery: bool = False, topic: str = "t"
) -> Incoming[Any]:
    envelope = Envelope.new(data, source=REGISTRY, business_process_id=case_id, test_delivery=test_delivery)
    return Incoming(envelope=envelope, data=data, topic=topic, partition=0, offset=0, trace_id="0" * 32)


class Hub:
    """The service's stores in memory, a clock that moves when told, and what was emitted."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.store = MemoryStore(clock=self.clock)
        self.emitter = RecordingEmitter(source=SOURCE)
        self.units = MemoryUnitsOfWork(self.store, self.emitter)

    def unit_of_work(self) -> MemoryUnitOfWork:
        """What the consumer hands a handler (its transaction is the test's)."""
        return MemoryUnitOfWork(self.store, self.emitter)

    async def history(self, notification_id: str) -> list[str]:
        async with self.units.begin() as uow:
            return [status for status, _ in await uow.notifications.history(notification_id)]

    def statuses(self, notification_id: str) -> list[tuple[str, str | None]]:
        return [
            (event.status.value, event.detail)
            for event in self.emitter.of_type(NotificationStatusChanged)
            if event.notification_id == notification_id
        ]
