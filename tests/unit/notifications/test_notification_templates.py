"""Templates: versioned data files, the citizen's language or German, generic steps, loud failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import Language
from services.notifications import templates
from services.notifications.templates import (
    MissingPlaceholder,
    TemplateError,
    UnknownTemplate,
    load_templates,
    render,
)

# What the registry always passes, plus the relocation extras.
PLACEHOLDERS = {
    "case_id": "eumzug-1",
    "case_type": "relocation",
    "step": "received",
    "first_name": "Anna",
    "official_name": "Muster",
    "milestone": "departure confirmed",
    "reason": "Die Wohnung ist nicht bewohnbar",
    "partner": "Einwohnerdienste Kriens",
    "departure": "Kriens",
    "arrival": "Luzern",
    "move_date": "2026-12-01",
}
# What the registry's first release passed for receipt and completion; must keep working.
FIRST_RELEASE = {
    k: PLACEHOLDERS[k]
    for k in ("first_name", "official_name", "case_id", "departure", "arrival", "move_date")
}
REGISTRY_NAMES = [
    "relocation.received",
    "relocation.departure-confirmed",
    "relocation.arrival-registered",
    "relocation.tax-record-updated",
    "relocation.completed",
    "relocation.rejected",
    "building-permit.received",
    "building-permit.environment-opinion-given",
    "building-permit.insurance-opinion-given",
    "building-permit.completed",
    "building-permit.rejected",
    "case.escalated",
]


def _write(folder: Path, name: str, versions: list[dict[str, object]]) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "versions": versions}), encoding="utf-8")


def _version(number: int, subject: str, **more: object) -> dict[str, object]:
    return {"version": number, "languages": {"de": {"subject": subject, "body": "Fall $case_id"}}, **more}


class TestVersions:
    def test_the_highest_version_is_rendered_and_recorded(self, tmp_path: Path) -> None:
        _write(tmp_path, "x.received", [_version(1, "alt $case_id"), _version(2, "neu $case_id")])
        message = load_templates(tmp_path).render("x.received", Language.DE, {"case_id": "c-1"})
        assert (message.version, message.subject) == (2, "neu c-1")

    def test_an_older_version_can_be_rendered_again(self, tmp_path: Path) -> None:
        _write(tmp_path, "x.received", [_version(1, "alt $case_id"), _version(2, "neu $case_id")])
        message = load_templates(tmp_path).render("x.received", Language.DE, {"case_id": "c-1"}, version=1)
        assert (message.version, message.subject) == (1, "alt c-1")

    def test_a_translation_dropped_in_the_current_version_falls_back_within_that_version(
        self, tmp_path: Path
    ) -> None:
        old = _version(1, "alt")
        old["languages"] = {"de": {"subject": "alt", "body": "."}, "fr": {"subject": "vieux", "body": "."}}
        _write(tmp_path, "x.received", [old, _version(2, "neu")])
        message = load_templates(tmp_path).render("x.received", Language.FR, {"case_id": "c"})
        assert (message.version, message.language, message.subject) == (2, Language.DE, "neu")

    def test_every_shipped_template_has_a_version_with_all_four_languages(self) -> None:
        shipped = templates._DEFAULT
        for name in shipped.names():
            assert {lang for (n, lang) in shipped.current if n == name} == set(Language), name


class TestLanguages:
    @pytest.mark.parametrize("language", list(Language))
    @pytest.mark.parametrize("name", REGISTRY_NAMES)
    def test_every_name_the_registry_uses_renders_in_every_language(
        self, name: str, language: Language
    ) -> None:
        message = render(name, language, PLACEHOLDERS)
        assert message.language is language
        assert "eumzug-1" in message.subject + message.body
        assert "$" not in message.subject + message.body

    def test_a_missing_translation_falls_back_to_german(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delitem(templates._TEMPLATES, ("relocation.completed", Language.IT))
        message = render("relocation.completed", Language.IT, PLACEHOLDERS)
        assert message.language is Language.DE
        assert message.subject == "Ihr Umzug eumzug-1 ist abgeschlossen"

    @pytest.mark.parametrize("name", ["relocation.received", "relocation.completed"])
    def test_the_first_releases_placeholders_still_suffice(self, name: str) -> None:
        assert render(name, Language.FR, FIRST_RELEASE).body.startswith("Bonjour Anna Muster")


class TestGenericSteps:
    def test_a_case_type_without_its_own_template_uses_the_generic_step(self) -> None:
        message = render("building-permit.completed", Language.EN, PLACEHOLDERS)
        assert message.template == "building-permit.completed"  # what was asked for is recorded
        assert message.source == "case.completed"
        assert message.subject == "Your case eumzug-1 is complete"

    def test_any_other_step_of_such_a_case_type_is_a_milestone(self) -> None:
        message = render("building-permit.environment-opinion-given", Language.FR, PLACEHOLDERS)
        assert message.source == "case.milestone"
        assert "Einwohnerdienste Kriens: départ confirmé." in message.body  # the milestone's label

    def test_a_case_types_own_template_wins_over_the_generic_one(self) -> None:
        message = render("relocation.departure-confirmed", Language.DE, PLACEHOLDERS)
        assert message.source == "relocation.departure-confirmed"
        assert "Kriens hat Ihren Wegzug per 1. Dezember 2026 bestätigt" in message.body

    @pytest.mark.parametrize("name", ["nope", "case.unheard-of", "unknown"])
    def test_a_name_with_no_template_and_no_generic_step_fails(self, name: str) -> None:
        with pytest.raises(UnknownTemplate):
            render(name, Language.DE, PLACEHOLDERS)


class TestPlaceholders:
    def test_a_missing_placeholder_fails_loudly_and_names_it(self) -> None:
        without_arrival = {k: v for k, v in FIRST_RELEASE.items() if k != "arrival"}
        with pytest.raises(MissingPlaceholder, match="arrival"):
            render("relocation.completed", Language.DE, without_arrival)

    def test_a_missing_placeholder_is_a_key_error_as_substitute_raises(self) -> None:
        with pytest.raises(KeyError):
            render("relocation.received", Language.DE, {"first_name": "Anna"})

    def test_a_declared_optional_placeholder_takes_its_default(self) -> None:
        without_partner = {k: v for k, v in PLACEHOLDERS.items() if k != "partner"}
        assert "Stelle: \n" in render("relocation.rejected", Language.DE, without_partner).body

    def test_an_sms_text_is_the_body_unless_the_template_has_one(self, tmp_path: Path) -> None:
        version = _version(1, "s")
        version["languages"] = {"de": {"subject": "s", "body": "lang $case_id", "sms": "kurz $case_id"}}
        _write(tmp_path, "x.received", [version])
        assert load_templates(tmp_path).render("x.received", Language.DE, {"case_id": "c"}).sms == "kurz c"
        assert render("relocation.completed", Language.DE, PLACEHOLDERS).sms.startswith("Guten Tag")


class TestMalformedFiles:
    @pytest.mark.parametrize(
        ("document", "complaint"),
        [
            ({"name": "other.name", "versions": [_version(1, "s")]}, "must match the file name"),
            ({"name": "x.received", "versions": []}, "no versions"),
            ({"name": "x.received", "versions": [_version(0, "s")]}, "positive integer"),
            (
                {
                    "name": "x.received",
                    "versions": [{"version": 1, "languages": {"fr": {"subject": "s", "body": "b"}}}],
                },
                "no de text",
            ),
            ({"name": "x.received", "versions": [_version(1, "bad $ sign")]}, "invalid placeholder"),
        ],
    )
    def test_a_malformed_file_stops_loading(
        self, tmp_path: Path, document: dict[str, object], complaint: str
    ) -> None:
        (tmp_path / "x.received.json").write_text(json.dumps(document), encoding="utf-8")
        with pytest.raises(TemplateError, match=complaint):
            load_templates(tmp_path)


def test_rendering_reads_no_template_file_they_are_loaded_once_per_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_files(*_: object) -> None:
        raise AssertionError("a template file was read while rendering")

    monkeypatch.setattr(templates.resources, "files", no_files)
    monkeypatch.setattr(templates, "load_templates", no_files)
    rendered = render("relocation.received", Language.DE, PLACEHOLDERS)
    assert rendered.subject == "Ihre Umzugsmeldung eumzug-1 ist eingegangen"
