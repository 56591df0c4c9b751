"""The case aggregate's decisions, free of I/O: who may act, which transition follows, and
that a completed or rejected case takes no step."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from services.registry.case_domain import Case, check_may_open, check_may_publish, check_sender
from services.registry.domain import CaseStatus
from services.registry.errors import CaseAlreadyFinal, NotAParty, NotAuthorized
from services.registry.model import CatalogEntry
from services.registry.parties_domain import Party
from tests.unit.registry.support import (
    ARRIVED,
    DEPARTED,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    MOVE,
    PORTAL,
    PROCESSES,
    TAX_OFFICE,
    TAXED,
)

RELOCATION = PROCESSES["relocation"]
PARTIES = (
    Party("opener", "portal", None, PORTAL.partner_id),
    Party("departure-municipality", "municipality", KRIENS_OFFICE.jurisdiction, KRIENS_OFFICE.partner_id),
    Party("arrival-municipality", "municipality", LUCERNE_OFFICE.jurisdiction, LUCERNE_OFFICE.partner_id),
    Party("arrival-tax-office", "tax-office", TAX_OFFICE.jurisdiction, TAX_OFFICE.partner_id),
)


def case(status: CaseStatus = CaseStatus.IN_PROGRESS, **changes: object) -> Case:
    fresh = Case(
        "c1", "relocation", status, "0" * 32, False, "e0", {}, dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    )
    return dataclasses.replace(fresh, parties=PARTIES, **changes)  # type: ignore[arg-type]


def test_only_a_known_active_partner_sends() -> None:
    assert check_sender(PORTAL, PORTAL.partner_id) is PORTAL
    with pytest.raises(NotAuthorized, match="unknown partner CH/X"):
        check_sender(None, "CH/X")
    with pytest.raises(NotAuthorized, match="is suspended"):
        check_sender(dataclasses.replace(PORTAL, status="suspended"), PORTAL.partner_id)


def test_the_catalogue_decides_which_roles_publish_a_type() -> None:
    check_may_publish(PORTAL, CatalogEntry(MOVE, ("portal",), "secret"), MOVE)
    with pytest.raises(NotAuthorized, match=r"\(roles municipality\) may not publish"):
        check_may_publish(KRIENS_OFFICE, CatalogEntry(MOVE, ("portal",), "secret"), MOVE)
    with pytest.raises(NotAuthorized, match="is not in the catalogue"):
        check_may_publish(PORTAL, None, MOVE)


def test_only_the_opening_role_opens_a_case() -> None:
    check_may_open(PORTAL, RELOCATION)
    with pytest.raises(NotAuthorized, match="may not open a relocation case"):
        check_may_open(KRIENS_OFFICE, RELOCATION)


def test_a_milestone_counts_only_from_the_party_of_its_slot() -> None:
    assert [m.name for m in case().milestones_of(RELOCATION, DEPARTED, KRIENS_OFFICE.partner_id)] == [
        "departure-confirmed"
    ]
    with pytest.raises(NotAParty, match=r"as departure-municipality, which .*departure-confirmed"):
        case().milestones_of(RELOCATION, DEPARTED, LUCERNE_OFFICE.partner_id)


def test_the_case_completes_with_its_last_required_milestone() -> None:
    c = case()
    assert not c.reach(RELOCATION, c.milestones_of(RELOCATION, DEPARTED, KRIENS_OFFICE.partner_id))
    assert not c.reach(RELOCATION, c.milestones_of(RELOCATION, TAXED, TAX_OFFICE.partner_id))
    assert c.status is CaseStatus.IN_PROGRESS
    assert c.reach(RELOCATION, c.milestones_of(RELOCATION, ARRIVED, LUCERNE_OFFICE.partner_id))
    assert (c.status, c.completed, c.final) == (CaseStatus.COMPLETED, True, True)
    assert c.milestones == {"departure-confirmed", "tax-record-updated", "arrival-registered"}


def test_an_opened_case_is_in_progress_after_its_first_milestone_and_an_escalated_one_stays_escalated() -> (
    None
):
    opened = case(CaseStatus.OPENED)
    assert opened.reach(RELOCATION, opened.milestones_of(RELOCATION, DEPARTED, KRIENS_OFFICE.partner_id))
    assert opened.status is CaseStatus.IN_PROGRESS
    escalated = case(CaseStatus.ESCALATED)
    assert not escalated.reach(
        RELOCATION, escalated.milestones_of(RELOCATION, DEPARTED, KRIENS_OFFICE.partner_id)
    )
    assert escalated.status is CaseStatus.ESCALATED


@pytest.mark.parametrize("final", [CaseStatus.COMPLETED, CaseStatus.REJECTED])
def test_a_final_case_takes_no_step(final: CaseStatus) -> None:
    c = case(final)
    reached = c.milestones_of(RELOCATION, DEPARTED, KRIENS_OFFICE.partner_id)
    with pytest.raises(CaseAlreadyFinal, match=f"case c1 is already {final}"):
        c.reach(RELOCATION, reached)
    with pytest.raises(CaseAlreadyFinal):
        c.reject(RELOCATION, KRIENS_OFFICE.partner_id)
    with pytest.raises(CaseAlreadyFinal):
        c.check_may_ask_citizen(RELOCATION, KRIENS_OFFICE.partner_id)
    assert (c.status, c.milestones) == (final, frozenset())


def test_a_rejection_and_a_request_to_the_citizen_come_from_a_working_party_only() -> None:
    c = case()
    with pytest.raises(NotAParty, match="which a rejection needs"):
        c.reject(RELOCATION, PORTAL.partner_id)
    with pytest.raises(NotAParty, match="which a request to the citizen needs"):
        c.check_may_ask_citizen(RELOCATION, PORTAL.partner_id)
    c.check_may_ask_citizen(RELOCATION, LUCERNE_OFFICE.partner_id)
    assert c.status is CaseStatus.IN_PROGRESS
    c.reject(RELOCATION, LUCERNE_OFFICE.partner_id)
    assert c.status is CaseStatus.REJECTED


def test_identitys_answer_gives_the_citizen_id_and_starts_an_opened_case() -> None:
    c = case(CaseStatus.OPENED)
    assert c.identified("citizen-services:c1")
    assert (c.status, c.citizen_id) == (CaseStatus.IN_PROGRESS, "citizen-services:c1")
    assert not c.identified(None)
    assert c.citizen_id == "citizen-services:c1"


def test_an_escalation_names_the_milestones_still_missing() -> None:
    c = case(milestones=frozenset({"departure-confirmed"}))
    assert c.escalate(RELOCATION) == ("arrival-registered", "tax-record-updated")
    assert c.status is CaseStatus.ESCALATED
