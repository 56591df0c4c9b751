"""Domain rules of the three services."""

from __future__ import annotations

import pytest

from contracts import Language
from services.identity.domain import sector_pseudonym
from services.notifications.templates import UnknownTemplate, render

SECRET = bytes(range(32))
VN = "7561234567897"
SEED = bytes(range(100, 132))  # the person's own seed, sealed with their record
PLACEHOLDERS = {
    "first_name": "Anna",
    "official_name": "Muster",
    "case_id": "eumzug-1",
    "departure": "Kriens",
    "arrival": "Luzern",
    "move_date": "2026-12-01",
}


def test_pseudonym_is_stable_within_a_sector() -> None:
    assert sector_pseudonym(SECRET, "tax", VN, 1, SEED) == sector_pseudonym(SECRET, "tax", VN, 1, SEED)


def test_pseudonyms_differ_across_sectors_and_persons() -> None:
    tax = sector_pseudonym(SECRET, "tax", VN, 1, SEED)
    registration = sector_pseudonym(SECRET, "resident-registration", VN, 1, SEED)
    other_person = sector_pseudonym(SECRET, "tax", "7569000000019", 1, SEED)
    assert len({tax, registration, other_person}) == 3


def test_pseudonym_does_not_contain_the_ahvn13_and_depends_on_the_secret() -> None:
    pseudonym = sector_pseudonym(SECRET, "tax", VN, 1, SEED)
    assert VN not in pseudonym
    assert pseudonym != sector_pseudonym(bytes(32), "tax", VN, 1, SEED)


@pytest.mark.parametrize("language", list(Language))
def test_templates_render_in_every_language(language: Language) -> None:
    message = render("relocation.received", language, PLACEHOLDERS)
    assert message.language is language
    assert "eumzug-1" in message.subject
    assert "Kriens" in message.body


def test_template_falls_back_to_german_when_a_translation_is_missing() -> None:
    from services.notifications import templates

    missing = ("relocation.received", Language.IT)
    saved = templates._TEMPLATES.pop(missing)
    try:
        assert render("relocation.received", Language.IT, PLACEHOLDERS).language is Language.DE
    finally:
        templates._TEMPLATES[missing] = saved


def test_unknown_template_and_missing_placeholder_fail_loudly() -> None:
    with pytest.raises(UnknownTemplate):
        render("nope", Language.DE, PLACEHOLDERS)
    with pytest.raises(KeyError):
        render("relocation.received", Language.DE, {"first_name": "Anna"})


def test_case_types_without_own_templates_use_the_generic_step_templates() -> None:
    placeholders = {
        **PLACEHOLDERS,
        "case_type": "building-permit",
        "step": "x",
        "milestone": "opinion given",
        "reason": "",
        "partner": "UWE",
    }
    milestone = render("building-permit.environment-opinion-given", Language.FR, placeholders)
    assert milestone.template == "building-permit.environment-opinion-given"
    assert "UWE: opinion given" in milestone.body
    assert milestone.language is Language.FR
    completed = render("building-permit.completed", Language.EN, placeholders)
    assert completed.language is Language.EN
    assert "eumzug-1" in completed.subject
