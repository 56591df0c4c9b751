"""One suite per case port, two adapters: the in-memory registry may not drift from PostgreSQL.

Cases (with their parties and milestones), timelines, pending deliveries, the parties'
late filling, and the registry's part of an erasure, each against both adapters.
"""

from __future__ import annotations

import abc
from typing import Any

import pytest

from contracts import Jurisdiction
from services.registry.adapters.classified import halves
from services.registry.domain import CaseStatus
from services.registry.errors import PersonErased
from services.registry.model import NewCase, PendingDelivery, TimelineStep
from services.registry.parties_domain import Candidate, Party
from services.registry.ports import UnitOfWork
from tests.contract.registry.adapters import MOVE, Adapter, InMemory, OnPostgres

pytestmark = pytest.mark.asyncio

VN = "7561234567897"
LUCERNE = Jurisdiction(level="municipality", bfs_number=1061, canton="LU")
KRIENS = Jurisdiction(level="municipality", bfs_number=1059, canton="LU")
DETAILS: dict[str, Any] = {
    "person": {
        "official_name": "Muster",
        "first_name": "Anna",
        "local_person_id": {"category": "CH.LU.1061", "id": "4711"},
    },
    "arrival": {"bfs_number": 1061, "name": "Luzern", "canton": "LU"},
    "move_date": "2026-12-01",
}


def new_case(case_id: str, *, vn: str | None = VN, deadline_s: float = 3600, **changes: Any) -> NewCase:
    return NewCase(
        case_id=case_id,
        case_type="relocation",
        trace_id="0" * 32,
        traceparent=changes.pop("traceparent", None),
        test_delivery=False,
        reported_event_id=f"{case_id}:opened",
        details=changes.pop("details", DETAILS),
        deadline_s=deadline_s,
        details_type=MOVE,
        subject_vn=vn,
    )


def step(case_id: str, detail: str, confidential: str | None = None) -> TimelineStep:
    return TimelineStep(
        case_id, "CH/MUN/1061/einwohnerdienste", "ch.x.v1", f"e-{detail}", "1" * 32, detail, confidential
    )


class CaseRepositoryContract(Adapter, abc.ABC):
    async def test_a_new_case_reads_back_opened_with_its_details(self, uow: UnitOfWork) -> None:
        assert await uow.cases.add(new_case("c1"))
        case = await uow.cases.get("c1")
        assert case is not None
        assert (case.case_id, case.case_type, case.status) == ("c1", "relocation", CaseStatus.OPENED)
        assert (case.reported_event_id, case.test_delivery, case.citizen_id) == ("c1:opened", False, None)
        assert case.details == DETAILS
        assert not case.erased
        assert case.deadline_at is not None
        assert (case.parties, case.milestones) == ((), frozenset())
        assert await uow.cases.exists("c1")

    async def test_a_case_id_opens_one_case_only(self, uow: UnitOfWork) -> None:
        assert await uow.cases.add(new_case("c1"))
        assert not await uow.cases.add(new_case("c1", details={"move_date": "2027-01-01"}))
        case = await uow.cases.get("c1", for_update=True)
        assert case is not None
        assert case.details == DETAILS

    async def test_an_unknown_case_is_none(self, uow: UnitOfWork) -> None:
        assert await uow.cases.get("nowhere") is None
        assert not await uow.cases.exists("nowhere")

    async def test_status_and_citizen_id_are_stored(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.cases.set_status("c1", CaseStatus.COMPLETED)
        await uow.cases.set_citizen_id("c1", "citizen-services:c1")
        case = await uow.cases.get("c1")
        assert case is not None
        assert (case.status, case.citizen_id, case.final) == (
            CaseStatus.COMPLETED,
            "citizen-services:c1",
            True,
        )

    async def test_a_milestone_is_recorded_once(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.cases.add_milestone("c1", "departure-confirmed", "CH/MUN/1059/einwohnerdienste", "e1")
        await uow.cases.add_milestone("c1", "departure-confirmed", "CH/MUN/1059/einwohnerdienste", "e2")
        await uow.cases.add_milestone("c1", "arrival-registered", "CH/MUN/1061/einwohnerdienste", "e3")
        case = await uow.cases.get("c1")
        assert case is not None
        assert case.milestones == {"departure-confirmed", "arrival-registered"}

    async def test_a_case_comes_with_its_parties_in_their_order(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        parties = (
            Party("reporting-portal", "portal", None, "CH/CAN/LU/eportal"),
            Party("arrival-municipality", "municipality", LUCERNE, "CH/MUN/1061/einwohnerdienste"),
            Party("departure-municipality", "municipality", KRIENS, unfilled_reason="nobody"),
        )
        await uow.parties.add("c1", parties)
        case = await uow.cases.get("c1")
        assert case is not None
        assert case.parties == parties

    async def test_open_cases_past_their_deadline_are_claimed_with_their_traceparent(
        self, uow: UnitOfWork
    ) -> None:
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        await uow.cases.add(new_case("late", deadline_s=-60, traceparent=traceparent))
        await uow.cases.add(new_case("later", deadline_s=-30))
        await uow.cases.add(new_case("in-time", deadline_s=3600))
        await uow.cases.add(new_case("done", deadline_s=-90))
        await uow.cases.set_status("done", CaseStatus.COMPLETED)
        await uow.cases.add(new_case("escalated", deadline_s=-120))
        await uow.cases.set_status("escalated", CaseStatus.ESCALATED)
        claimed = await uow.cases.claim_overdue(10)
        assert [(case.case_id, parent) for case, parent in claimed] == [
            ("late", traceparent),
            ("later", None),
        ]
        assert [case.case_id for case, _ in await uow.cases.claim_overdue(1)] == ["late"]

    async def test_an_erased_persons_case_keeps_only_its_readable_details(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.cases.add(new_case("c2", vn="7569217076985"))
        await self.destroy_person(uow, VN)
        case, other = await uow.cases.get("c1"), await uow.cases.get("c2")
        assert case is not None
        assert other is not None
        assert case.erased
        assert case.details == halves(MOVE, DETAILS)[0]
        assert "first_name" not in case.details["person"]
        assert case.details["arrival"] == DETAILS["arrival"]
        assert (other.erased, other.details) == (False, DETAILS)

    async def test_a_person_back_after_their_erasure_is_a_new_person(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await self.destroy_person(uow, VN)
        assert await uow.cases.add(new_case("c2"))
        old, new = await uow.cases.get("c1"), await uow.cases.get("c2")
        assert old is not None
        assert new is not None
        assert (old.erased, new.erased, new.details) == (True, False, DETAILS)

    async def test_an_erased_case_id_takes_no_new_case(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await self.destroy_person(uow, VN)
        with pytest.raises(PersonErased, match="belongs to an erased person"):
            await uow.cases.add(new_case("c1", vn=None))

    async def test_cases_of_one_person_share_a_key(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.cases.add(new_case("c2"))
        await self.destroy_person(uow, VN)
        erased = [await uow.cases.get(case_id) for case_id in ("c1", "c2")]
        assert [case.erased for case in erased if case is not None] == [True, True]

    async def test_a_case_without_a_person_has_a_key_of_its_own(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1", vn=None))
        await self.destroy_person(uow, VN)
        case = await uow.cases.get("c1")
        assert case is not None
        assert (case.erased, case.details) == (False, DETAILS)


class TimelineContract(Adapter, abc.ABC):
    async def test_steps_read_back_in_order_with_their_text(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.timeline.add(step("c1", "opened"))
        await uow.timeline.add(step("c1", "rejected", "Die Wohnung ist nicht bewohnbar."))
        await uow.timeline.add(step("c1", "delivered"))
        steps = await uow.timeline.of_case("c1")
        assert [(s.detail, s.confidential, s.erased) for s in steps] == [
            ("opened", None, False),
            ("rejected", "Die Wohnung ist nicht bewohnbar.", False),
            ("delivered", None, False),
        ]
        first = steps[0]
        assert (first.service, first.event_type, first.event_id, first.trace_id) == (
            "CH/MUN/1061/einwohnerdienste",
            "ch.x.v1",
            "e-opened",
            "1" * 32,
        )
        assert await uow.timeline.of_case("c2") == []

    async def test_a_text_about_the_person_is_erased_with_them_and_the_summary_stays(
        self, uow: UnitOfWork
    ) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.timeline.add(step("c1", "rejected", "Die Wohnung ist nicht bewohnbar."))
        await self.destroy_person(uow, VN)
        await uow.timeline.add(step("c1", "action required", "Bitte den Mietvertrag hochladen."))
        steps = await uow.timeline.of_case("c1")
        assert [(s.detail, s.confidential, s.erased) for s in steps] == [
            ("rejected", None, True),
            ("action required", None, True),
        ]


class PendingDeliveriesContract(Adapter, abc.ABC):
    async def test_a_pending_delivery_is_taken_once_with_its_data(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.pending.add(PendingDelivery("r1", "c1", "e1", MOVE, DETAILS))
        assert await uow.pending.take("r1") == PendingDelivery("r1", "c1", "e1", MOVE, DETAILS)
        assert await uow.pending.take("r1") is None
        assert await uow.pending.take("r2") is None

    async def test_nothing_is_left_to_deliver_once_the_person_is_erased(self, uow: UnitOfWork) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.pending.add(PendingDelivery("r1", "c1", "e1", MOVE, DETAILS))
        await self.destroy_person(uow, VN)
        assert await uow.pending.take("r1") is None
        with pytest.raises(PersonErased):
            await uow.pending.add(PendingDelivery("r2", "c1", "e2", MOVE, DETAILS))


class CasePartiesContract(Adapter, abc.ABC):
    ROLE = "contract-municipality"
    LUCERNE_OFFICE = Candidate("CH/TEST/1061/office", (ROLE,), LUCERNE, True)

    async def _case_with_slots(self, uow: UnitOfWork, case_id: str) -> None:
        await uow.cases.add(new_case(case_id))
        await uow.parties.add(
            case_id,
            (
                Party("arrival", self.ROLE, LUCERNE, unfilled_reason="no active partner"),
                Party("departure", self.ROLE, KRIENS, unfilled_reason="no active partner"),
                Party("other-role", "contract-tax-office", LUCERNE, unfilled_reason="no active partner"),
            ),
        )

    async def test_an_unfilled_slot_of_an_open_case_waits_for_the_partner_it_needs(
        self, uow: UnitOfWork
    ) -> None:
        await self._case_with_slots(uow, "c2")
        await self._case_with_slots(uow, "c1")
        await self._case_with_slots(uow, "closed")
        await uow.cases.set_status("closed", CaseStatus.REJECTED)
        await self._case_with_slots(uow, "escalated")
        await uow.cases.set_status("escalated", CaseStatus.ESCALATED)
        found = await uow.parties.open_slots_needing(self.LUCERNE_OFFICE)
        assert [(s.case_id, s.case_type, s.party.slot) for s in found] == [
            ("c1", "relocation", "arrival"),
            ("c2", "relocation", "arrival"),
            ("escalated", "relocation", "arrival"),
        ]
        assert found[0].trace_id == "0" * 32
        assert found[0].party == Party("arrival", self.ROLE, LUCERNE, unfilled_reason="no active partner")
        nowhere = Candidate("CH/TEST/none", (self.ROLE,), None, True)
        assert await uow.parties.open_slots_needing(nowhere) == []

    async def test_a_filled_slot_is_no_longer_open_and_keeps_its_partner(self, uow: UnitOfWork) -> None:
        await self._case_with_slots(uow, "c1")
        await uow.parties.fill("c1", "arrival", self.LUCERNE_OFFICE.partner_id)
        await uow.parties.fill("c1", "arrival", "CH/TEST/someone-else")  # only an unfilled slot
        await uow.parties.set_unfilled_reason("c1", "arrival", "ignored: the slot is filled")
        await uow.parties.set_unfilled_reason("c1", "departure", "2 active partners")
        assert await uow.parties.open_slots_needing(self.LUCERNE_OFFICE) == []
        case = await uow.cases.get("c1")
        assert case is not None
        assert case.parties[:2] == (
            Party("arrival", self.ROLE, LUCERNE, self.LUCERNE_OFFICE.partner_id),
            Party("departure", self.ROLE, KRIENS, unfilled_reason="2 active partners"),
        )


class ErasureContract(Adapter, abc.ABC):
    async def test_the_rows_sealed_under_the_persons_keys_are_reported_unreadable(
        self, uow: UnitOfWork
    ) -> None:
        await uow.cases.add(new_case("c1"))
        await uow.cases.add(new_case("other", vn="7569217076985"))
        for case_id in ("c1", "other"):
            await uow.pending.add(PendingDelivery(f"r-{case_id}", case_id, "e1", MOVE, DETAILS))
            await uow.timeline.add(step(case_id, "opened"))
            await uow.timeline.add(step(case_id, "rejected", "Die Wohnung ist nicht bewohnbar."))
        await self.destroy_person(uow, VN)
        reports = await self.erasure(uow).erase(case_ids=["c1"], citizen_ids=[])
        assert [(r.store, r.done, r.rows) for r in reports] == [
            ("registry.cases", "unreadable (sealed under a destroyed key)", 1),
            ("registry.pending_deliveries", "unreadable (sealed under a destroyed key)", 1),
            ("registry.timeline", "unreadable (sealed under a destroyed key)", 1),
        ]

    async def test_the_citizen_ids_of_the_cases_are_found(self, uow: UnitOfWork) -> None:
        for case_id in ("c1", "c2", "c3", "other"):
            await uow.cases.add(new_case(case_id))
        await uow.cases.set_citizen_id("c1", "citizen-services:a")
        await uow.cases.set_citizen_id("c2", "citizen-services:a")
        await uow.cases.set_citizen_id("other", "citizen-services:b")
        erasure = self.erasure(uow)
        assert await erasure.citizen_ids_of_cases(["c1", "c2", "c3", "unknown"]) == {"citizen-services:a"}
        assert await erasure.citizen_ids_of_cases([]) == set()


class TestInMemoryCases(CaseRepositoryContract, InMemory):
    pass


class TestPostgresCases(CaseRepositoryContract, OnPostgres):
    pass


class TestInMemoryTimeline(TimelineContract, InMemory):
    pass


class TestPostgresTimeline(TimelineContract, OnPostgres):
    pass


class TestInMemoryPendingDeliveries(PendingDeliveriesContract, InMemory):
    pass


class TestPostgresPendingDeliveries(PendingDeliveriesContract, OnPostgres):
    pass


class TestInMemoryCaseParties(CasePartiesContract, InMemory):
    pass


class TestPostgresCaseParties(CasePartiesContract, OnPostgres):
    pass


class TestInMemoryErasure(ErasureContract, InMemory):
    pass


class TestPostgresErasure(ErasureContract, OnPostgres):
    pass
