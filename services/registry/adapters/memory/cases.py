"""Cases, timelines, pending deliveries and case parties in memory."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from contracts.classification import merge
from services.registry.adapters.classified import halves
from services.registry.adapters.memory.state import (
    OPEN_STATUSES,
    CaseRow,
    MemoryState,
    PendingRow,
    TimelineRow,
)
from services.registry.case_domain import Case
from services.registry.domain import FINAL_STATUSES, CaseStatus
from services.registry.errors import PersonErased
from services.registry.model import (
    NewCase,
    OpenSlot,
    PendingDelivery,
    RecordedStep,
    TimelineStep,
)
from services.registry.parties_domain import Candidate, Party


class MemoryCases:
    def __init__(self, state: MemoryState, clock: Callable[[], dt.datetime]) -> None:
        self._state, self._clock = state, clock

    async def add(self, case: NewCase) -> bool:
        vault = self._state.vault
        ref = (
            vault.subject_ref(case.subject_vn)
            if case.subject_vn is not None
            else vault.case_ref(case.case_id)
        )
        ring = vault.key_for(ref)
        if ring in vault.destroyed:
            raise PersonErased(
                f"case {case.case_id} belongs to an erased person: nothing more is stored for it"
            )
        if case.case_id in self._state.cases:
            return False
        readable, protected = halves(case.details_type, case.details)
        self._state.cases[case.case_id] = CaseRow(
            case_id=case.case_id,
            case_type=case.case_type,
            status=CaseStatus.OPENED,
            trace_id=case.trace_id,
            traceparent=case.traceparent,
            test_delivery=case.test_delivery,
            reported_event_id=case.reported_event_id,
            readable=copy.deepcopy(readable),
            sealed=vault.seal(ring, protected),
            deadline_at=self._clock() + dt.timedelta(seconds=case.deadline_s),
            opened_at=self._clock(),
        )
        vault.bind(vault.case_ref(case.case_id), ring)
        return True

    async def get(self, case_id: str, *, for_update: bool = False) -> Case | None:
        row = self._state.cases.get(case_id)
        return None if row is None else self._case(row)

    async def exists(self, case_id: str) -> bool:
        return case_id in self._state.cases

    async def claim_overdue(self, limit: int) -> list[tuple[Case, str | None]]:
        now = self._clock()
        overdue = sorted(
            (
                row
                for row in self._state.cases.values()
                if row.status in (CaseStatus.OPENED, CaseStatus.IN_PROGRESS) and row.deadline_at < now
            ),
            key=lambda row: row.deadline_at,
        )
        return [(self._case(row), row.traceparent) for row in overdue[:limit]]

    async def set_status(self, case_id: str, status: CaseStatus) -> None:
        if (row := self._state.cases.get(case_id)) is not None:
            row.status = status
            row.closed_at = self._clock() if status in FINAL_STATUSES else None

    async def set_citizen_id(self, case_id: str, citizen_id: str) -> None:
        if (row := self._state.cases.get(case_id)) is not None:
            row.citizen_id = citizen_id

    async def add_milestone(self, case_id: str, milestone: str, partner_id: str, event_id: str) -> None:
        self._state.milestones.setdefault(case_id, {}).setdefault(milestone, (partner_id, event_id))

    def _case(self, row: CaseRow) -> Case:
        erased = self._state.vault.erased(row.sealed)
        details = (
            copy.deepcopy(row.readable) if erased else merge(row.readable, copy.deepcopy(row.sealed.value))
        )
        return Case(
            case_id=row.case_id,
            case_type=row.case_type,
            status=row.status,
            trace_id=row.trace_id,
            test_delivery=row.test_delivery,
            reported_event_id=row.reported_event_id,
            details=details,
            deadline_at=row.deadline_at,
            citizen_id=row.citizen_id,
            opened_at=row.opened_at,
            erased=erased,
            parties=tuple(self._state.parties.get(row.case_id, ())),
            milestones=frozenset(self._state.milestones.get(row.case_id, {})),
        )


class MemoryTimeline:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def add(self, step: TimelineStep) -> None:
        sealed = None
        if step.confidential is not None:
            vault = self._state.vault
            sealed = vault.seal(vault.key_for(vault.case_ref(step.case_id)), step.confidential)
        entry = replace(step, confidential=None)
        self._state.timeline.append(TimelineRow(self._state.next_id(), entry, sealed))

    async def of_case(self, case_id: str) -> list[RecordedStep]:
        steps = []
        for row in self._state.timeline:
            if row.step.case_id != case_id:
                continue
            erased = row.sealed is not None and self._state.vault.erased(row.sealed)
            text = None if row.sealed is None or erased else row.sealed.value
            s = row.step
            steps.append(
                RecordedStep(s.service, s.event_type, s.event_id, s.trace_id, s.detail, text, erased)
            )
        return steps


class MemoryPending:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def add(self, pending: PendingDelivery) -> None:
        vault = self._state.vault
        ring = vault.key_for(vault.case_ref(pending.case_id))
        if ring in vault.destroyed:
            raise PersonErased(
                f"case {pending.case_id} belongs to an erased person: nothing more is stored for it"
            )
        readable, protected = halves(pending.event_type, pending.data)
        self._state.pending[pending.request_id] = PendingRow(
            replace(pending, data={}), copy.deepcopy(readable), vault.seal(ring, protected)
        )

    async def take(self, request_id: str) -> PendingDelivery | None:
        row = self._state.pending.pop(request_id, None)
        if row is None or self._state.vault.erased(row.sealed):
            return None
        return replace(row.pending, data=merge(row.readable, copy.deepcopy(row.sealed.value)))


class MemoryCaseParties:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def add(self, case_id: str, parties: Sequence[Party]) -> None:
        self._state.parties[case_id] = list(parties)

    async def open_slots_needing(self, candidate: Candidate) -> list[OpenSlot]:
        if candidate.jurisdiction is None:
            return []
        found = []
        for case_id in sorted(self._state.parties):
            case = self._state.cases[case_id]
            if case.status not in OPEN_STATUSES:
                continue
            for party in self._state.parties[case_id]:
                if (
                    party.partner_id is None
                    and party.role in candidate.roles
                    and party.jurisdiction == candidate.jurisdiction
                ):
                    found.append(OpenSlot(case_id, case.case_type, case.trace_id, party))
        return found

    async def fill(self, case_id: str, slot: str, partner_id: str) -> None:
        self._change(case_id, slot, partner_id=partner_id, unfilled_reason=None)

    async def set_unfilled_reason(self, case_id: str, slot: str, reason: str) -> None:
        self._change(case_id, slot, unfilled_reason=reason)

    def _change(self, case_id: str, slot: str, **changes: Any) -> None:
        parties = self._state.parties.get(case_id, [])
        for position, party in enumerate(parties):
            if party.slot == slot and party.partner_id is None:
                parties[position] = replace(party, **changes)
