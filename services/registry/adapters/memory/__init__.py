"""The registry in memory: the same ports as the PostgreSQL adapter, in dicts and lists.

For handler tests without a database: ``MemoryRegistry`` keeps the state every unit of work
it builds shares, a vault of its own (a ring per person; destroying it makes what was
sealed under it read as erased, as destroyed data keys do) and the audit chain, sealed for
real under a test key. ``tests/contract/registry`` holds it to the PostgreSQL adapter's
behaviour.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TypeVar

from hub.audit.chain import AuditKey
from hub.runtime.messages import Emitter
from services.erasure import StoreReport
from services.registry.adapters.memory.cases import (
    MemoryCaseParties,
    MemoryCases,
    MemoryPending,
    MemoryTimeline,
)
from services.registry.adapters.memory.partners import (
    MemoryAuditLog,
    MemoryCatalogue,
    MemoryPartnerKeys,
    MemoryPartners,
    MemorySubscriptions,
)
from services.registry.adapters.memory.state import (
    TEST_AUDIT_KEY,
    UNREADABLE,
    MemoryState,
    MemoryVault,
    Sealed,
    utcnow,
)
from services.registry.figures import AfterCommit, NoFigures, RecordedFigures
from services.registry.ports import CaseFigures, Transactional, Work

__all__ = [
    "TEST_AUDIT_KEY",
    "MemoryRegistry",
    "MemoryRegistryErasure",
    "MemoryState",
    "MemoryUnitOfWork",
    "MemoryVault",
    "Sealed",
]
T = TypeVar("T")


@dataclass
class MemoryUnitOfWork:
    state: MemoryState
    emitter: Emitter
    audit_key: AuditKey = field(default=TEST_AUDIT_KEY, repr=False)
    clock: Callable[[], dt.datetime] = utcnow
    sink: CaseFigures = field(default_factory=NoFigures)

    def __post_init__(self) -> None:
        self.figures = AfterCommit(self.emitter, self.sink)
        self.cases = MemoryCases(self.state, self.clock)
        self.timeline = MemoryTimeline(self.state)
        self.pending = MemoryPending(self.state)
        self.partners = MemoryPartners(self.state)
        self.catalogue = MemoryCatalogue(self.state)
        self.subscriptions = MemorySubscriptions(self.state)
        self.parties = MemoryCaseParties(self.state)
        self.partner_keys = MemoryPartnerKeys(self.state)
        self.audit = MemoryAuditLog(self.state, self.audit_key, self.clock)


@dataclass
class MemoryRegistry:
    """The registry's state in memory, and the units of work over it."""

    state: MemoryState = field(default_factory=MemoryState)
    audit_key: AuditKey = field(default=TEST_AUDIT_KEY, repr=False)
    clock: Callable[[], dt.datetime] = utcnow
    figures: RecordedFigures = field(default_factory=RecordedFigures)

    def unit_of_work(self, emitter: Emitter) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.state, emitter, self.audit_key, self.clock, self.figures)

    def transactional(self, emitter: Emitter) -> Transactional:
        """Each call runs its work on the shared state; if the work raises, the state is put
        back as it was and nothing it emitted stays, as a rolled-back transaction."""

        async def run(work: Work[T]) -> T:
            before, emitted = copy.deepcopy(self.state), len(emitter.emitted)
            try:
                result = await work(self.unit_of_work(emitter))
            except BaseException:
                self.state.__dict__.update(before.__dict__)
                del emitter.emitted[emitted:]
                raise
            emitter.committed()
            return result

        return run

    def erasure(self) -> MemoryRegistryErasure:
        return MemoryRegistryErasure(self.state)


class MemoryRegistryErasure:
    """``services.erasure.PersonErasure`` over the in-memory registry."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        return {
            row.citizen_id
            for case_id in case_ids
            if (row := self._state.cases.get(case_id)) is not None and row.citizen_id is not None
        }

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        wanted = set(case_ids)
        cases = sum(1 for case_id in wanted if case_id in self._state.cases)
        pending = sum(1 for row in self._state.pending.values() if row.pending.case_id in wanted)
        timeline = sum(
            1 for row in self._state.timeline if row.step.case_id in wanted and row.sealed is not None
        )
        return [
            StoreReport("registry.cases", UNREADABLE, cases),
            StoreReport("registry.pending_deliveries", UNREADABLE, pending),
            StoreReport("registry.timeline", UNREADABLE, timeline),
        ]
