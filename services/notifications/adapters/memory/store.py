"""The in-memory tables of notifications, the clock they keep time by, and the erased cases."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts import DeliveryStatus
from services.notifications.domain import NewInboxMessage, NewNotification, Preference, WebhookEndpoint

DUE = (DeliveryStatus.CREATED, DeliveryStatus.TEMPORARY_FAILURE)
UNFINISHED = (*DUE, DeliveryStatus.SENDING)


@dataclass
class ManualClock:
    """A clock that moves only when told to: retries and leases without waiting."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class NoticeRow:
    new: NewNotification
    # (time, unit): as PostgreSQL's now(), the start of the unit of work that stored it.
    created: tuple[float, int]
    status: DeliveryStatus = DeliveryStatus.CREATED
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class InboxRow:
    message: NewInboxMessage
    delivered: tuple[float, int]


@dataclass
class State:
    notices: dict[str, NoticeRow] = field(default_factory=dict)
    history: list[tuple[str, str, str | None]] = field(default_factory=list)
    preferences: dict[str, Preference] = field(default_factory=dict)
    inbox: dict[str, InboxRow] = field(default_factory=dict)
    webhooks: dict[str, WebhookEndpoint] = field(default_factory=dict)


@dataclass
class MemoryStore:
    """The service's tables. ``unavailable`` makes opening a unit of work fail as a lost database would."""

    clock: Callable[[], float] = time.time
    unavailable: bool = False
    state: State = field(default_factory=State)
    erased_cases: set[str] = field(default_factory=set)
    _units: itertools.count[int] = field(default_factory=itertools.count)
    _due_listeners: list[Callable[[], None]] = field(default_factory=list)

    def erase_case(self, case_id: str) -> None:
        """What destroying the data key of the case's person does to what is sealed under it."""
        self.erased_cases.add(case_id)

    def next_unit(self) -> int:
        return next(self._units)

    def when(self, created: tuple[float, int]) -> dt.datetime:
        return dt.datetime.fromtimestamp(created[0], dt.UTC)
