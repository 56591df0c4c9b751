"""The partner guide's generated pages: written from the code that decides, and checked.

``make contracts-check`` runs ``python -m tools.partner_guide docs/partners --check``; these
tests show that the check catches a stale page, that the committed pages are current, and
that the pages say what the process definitions and the exception tree say.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.registry.domain import load_processes
from services.registry.refusals import REASON_CLASSES
from tools.partner_guide import (
    ADVICE,
    CASE_TYPES_PAGE,
    REFUSALS_PAGE,
    main,
    pages,
    refusal_classes,
    stale_pages,
)

ROOT = Path(__file__).resolve().parents[3]
PARTNER_DOCS = ROOT / "docs" / "partners"


def test_the_check_passes_on_fresh_pages_and_fails_on_a_stale_one(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert main([str(tmp_path), "--check"]) == 0

    page = tmp_path / CASE_TYPES_PAGE
    page.write_text(page.read_text(encoding="utf-8").replace("arrival-tax-office", "tax-office"))
    assert main([str(tmp_path), "--check"]) == 1
    assert stale_pages(tmp_path, pages()) == [str(page)]


def test_the_check_fails_on_a_missing_page(tmp_path: Path) -> None:
    main([str(tmp_path)])
    (tmp_path / REFUSALS_PAGE).unlink()
    assert main([str(tmp_path), "--check"]) == 1


def test_the_committed_pages_are_current() -> None:
    assert stale_pages(PARTNER_DOCS, pages()) == []


def test_every_slot_milestone_and_rejection_slot_of_every_process_is_in_the_page() -> None:
    processes = load_processes()
    page = pages(processes)[CASE_TYPES_PAGE]
    for process in processes.by_case_type.values():
        section = page.split(f"## `{process.case_type}`", 1)[1].split("\n## ", 1)[0]
        for slot in process.parties:
            row = next(line for line in section.splitlines() if line.startswith(f"| `{slot.name}` |"))
            assert f"| `{slot.role}` |" in row
            may_reject = "yes" if slot.name in process.rejection_slots else "no"
            may_ask = "yes" if slot.name in process.working_slots else "no"
            assert row.endswith(f"| {may_reject} | {may_ask} |"), row
        for milestone in process.milestones:
            assert (
                f"| `{milestone.event_type}` | the partner in `{milestone.slot}` "
                f"| milestone `{milestone.name}` |" in section
            )
        assert f"Opened by `{process.opened_by.event_type}`" in section


def test_every_refusal_class_in_the_code_has_a_row_with_its_dead_letter_name() -> None:
    page = pages()[REFUSALS_PAGE]
    classes = refusal_classes()
    # The exception tree the ingress route raises is all there, not a subset.
    names = {kind.__qualname__ for kind in classes}
    assert {"NotAParty", "ForeignIngressTopic", "StaleEvent", "MisroutedRecord", "ContractViolation"} <= names
    for kind in classes:
        assert f"(`{kind.__module__}.{kind.__qualname__}`)" in page
    for _, audit_class in REASON_CLASSES:
        assert f"| `{audit_class}` |" in page


def test_a_refusal_class_without_advice_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    import tools.partner_guide as guide

    without = {name: advice for name, advice in ADVICE.items() if not name.endswith(".NotAParty")}
    monkeypatch.setattr(guide, "ADVICE", without)
    with pytest.raises(SystemExit, match=r"no ADVICE for services\.registry\.errors\.NotAParty"):
        guide.refusals_page()


def test_the_guide_links_the_generated_pages_and_names_every_refusal() -> None:
    guide = (PARTNER_DOCS / "onboarding.md").read_text(encoding="utf-8")
    assert f"]({CASE_TYPES_PAGE})" in guide
    assert f"]({REFUSALS_PAGE})" in guide
    assert "](signing.md" in guide
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", guide))
    missing = sorted({kind.__qualname__ for kind in refusal_classes()} - named)
    assert missing == []
