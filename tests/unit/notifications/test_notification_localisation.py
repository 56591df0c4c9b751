"""Notices read well in the citizen's language: long dates and labels, never ISO dates or identifiers."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from contracts import Language
from services.notifications import templates
from services.notifications.channels import email_message
from services.notifications.domain import Pending
from services.notifications.localisation import (
    DATE_LOCALES,
    DEFAULT_LOCALISER,
    LabelError,
    Localiser,
    load_labels,
)
from services.notifications.templates import TemplateSet, render

LOGGER = "services.notifications.localisation"
# What the registry passes: identifiers and ISO dates, as its process definitions know them.
PLACEHOLDERS = {
    "case_id": "eumzug-1",
    "case_type": "relocation",
    "step": "received",
    "first_name": "Anna",
    "official_name": "Muster",
    "milestone": "",
    "reason": "",
    "partner": "Einwohnerdienste Kriens",
    "action": "Mietvertrag einreichen",
    "due_on": "2026-12-03",
    "departure": "Kriens",
    "arrival": "Luzern",
    "move_date": "2026-12-03",
}
RAW_VALUES = ("2026-12-03", "relocation", "building-permit", "departure-confirmed", "arrival-registered")


@dataclass(frozen=True)
class Reading:
    """How a notice reads in one language."""

    language: Language
    received_subject: str
    received_sentence: str
    action_sentence: str
    due_line: str
    escalated_subject: str
    missing_steps: str


READINGS = [
    Reading(
        Language.DE,
        received_subject="Ihre Umzugsmeldung eumzug-1 ist eingegangen",
        received_sentence="Meldung des Umzugs von Kriens nach Luzern per 3. Dezember 2026 erhalten.",
        action_sentence="Für Ihr Anliegen (Baugesuch) braucht es Ihre Mithilfe.",
        due_line="Bis: 3. Dezember 2026\n",
        escalated_subject="Frist verpasst: Fall eumzug-1 (Umzug)",
        missing_steps="Fehlende Schritte: Wegzug bestätigt, Zuzug registriert\n",
    ),
    Reading(
        Language.FR,
        received_subject="Votre annonce de déménagement eumzug-1 a été reçue",
        received_sentence="votre déménagement de Kriens à Luzern au 3 décembre 2026.",
        action_sentence="Votre demande (permis de construire) nécessite votre intervention.",
        due_line="D'ici au : 3 décembre 2026\n",
        escalated_subject="Délai dépassé : dossier eumzug-1 (déménagement)",
        missing_steps="Étapes manquantes : départ confirmé, arrivée enregistrée\n",
    ),
    Reading(
        Language.IT,
        received_subject="La sua notifica di trasloco eumzug-1 è stata ricevuta",
        received_sentence="notifica del trasloco da Kriens a Luzern il 3 dicembre 2026.",
        action_sentence="La sua richiesta (domanda di costruzione) richiede il suo intervento.",
        due_line="Entro il: 3 dicembre 2026\n",
        escalated_subject="Termine scaduto: pratica eumzug-1 (trasloco)",
        missing_steps="Tappe mancanti: partenza confermata, arrivo registrato\n",
    ),
    Reading(
        Language.EN,
        received_subject="Your move report eumzug-1 has been received",
        received_sentence="the move from Kriens to Luzern on December 3, 2026.",
        action_sentence="Your request (building permit) needs something from you.",
        due_line="By: December 3, 2026\n",
        escalated_subject="Deadline missed: case eumzug-1 (move)",
        missing_steps="Missing steps: departure confirmed, arrival registered\n",
    ),
]


def _email(name: str, language: Language, **changes: str) -> EmailMessage:
    """The mail of a notice as the email channel builds it from the rendered text."""
    message = render(name, language, PLACEHOLDERS | changes)
    pending = Pending(
        notification_id=f"eumzug-1:{name}",
        case_id="eumzug-1",
        channel="email",
        recipient="anna.muster@example.ch",
        template=name,
        subject=message.subject,
        body=message.body,
        language=message.language.value,
        test_delivery=False,
        attempts=0,
        traceparent=None,
        tracestate=None,
    )
    return email_message(pending, "noreply@hub.stadtluzern.ch")


def _text(mail: EmailMessage) -> str:
    return f"{mail['Subject']}\n{mail.get_content()}"


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: r.language.value)
class TestEveryLanguage:
    def test_a_move_report_shows_the_move_date_in_the_long_form(self, reading: Reading) -> None:
        mail = _email("relocation.received", reading.language)
        assert mail["Subject"] == reading.received_subject
        assert reading.received_sentence in mail.get_content()
        assert mail["Content-Language"] == reading.language.value
        assert not [raw for raw in RAW_VALUES if raw in _text(mail)]

    def test_a_request_for_action_names_the_case_type_and_the_due_date(self, reading: Reading) -> None:
        mail = _email("building-permit.action-required", reading.language, case_type="building-permit")
        body = mail.get_content()
        assert reading.action_sentence in body
        assert reading.due_line in body
        assert not [raw for raw in RAW_VALUES if raw in _text(mail)]

    def test_an_escalation_names_the_case_type_and_each_missing_milestone(self, reading: Reading) -> None:
        mail = _email("case.escalated", reading.language, milestone="departure-confirmed, arrival-registered")
        assert mail["Subject"] == reading.escalated_subject
        assert reading.missing_steps in mail.get_content()
        assert not [raw for raw in RAW_VALUES if raw in _text(mail)]


def _registry_processes() -> list[dict[str, Any]]:
    folder = resources.files("services.registry.processes")
    return [
        json.loads(entry.read_text("utf-8")) for entry in folder.iterdir() if entry.name.endswith(".json")
    ]


class TestNothingFallsBackSilently:
    def test_the_registry_has_process_definitions_to_check_against(self) -> None:
        assert {p["case_type"] for p in _registry_processes()} >= {"relocation", "building-permit"}

    def test_every_label_is_written_in_all_four_languages(self) -> None:
        for kind, entries in DEFAULT_LOCALISER.labels.items():
            for identifier, texts in entries.items():
                assert set(texts) == set(Language), f"{kind} {identifier}"

    def test_every_case_type_and_milestone_of_the_registry_has_a_label(self) -> None:
        labels = DEFAULT_LOCALISER.labels
        for process in _registry_processes():
            assert process["case_type"] in labels["case_type"], process["case_type"]
            for milestone in process["milestones"]:
                assert milestone["name"] in labels["milestone"], milestone["name"]

    def test_every_language_has_a_date_locale(self) -> None:
        assert set(DATE_LOCALES) == set(Language)

    @pytest.mark.parametrize("language", list(Language))
    def test_every_notice_the_registry_sends_renders_without_any_fallback(
        self, language: Language, caplog: pytest.LogCaptureFixture
    ) -> None:
        # A fresh localiser: one shared with other tests may have reported a fallback already.
        fresh = TemplateSet(
            templates._DEFAULT.versions.values(), localiser=Localiser(DEFAULT_LOCALISER.labels)
        )
        caplog.set_level(logging.WARNING, logger=LOGGER)
        for process in _registry_processes():
            milestones = [m["name"] for m in process["milestones"]]
            steps = ["received", "action-required", "completed", "rejected", *milestones]
            for step in steps:
                # As the registry fills it: a reached milestone's name with spaces, else nothing.
                milestone = step.replace("-", " ") if step in milestones else ""
                values = PLACEHOLDERS | {"case_type": process["case_type"], "milestone": milestone}
                message = fresh.render(f"{process['case_type']}.{step}", language, values)
                assert message.language is language
            escalation = PLACEHOLDERS | {
                "case_type": process["case_type"],
                "milestone": ", ".join(milestones),
            }
            assert fresh.render("case.escalated", language, escalation).language is language
        assert caplog.records == []


class TestFallbacks:
    LABELS: Mapping[str, Mapping[str, Mapping[Language, str]]] = {
        "case_type": {"relocation": {Language.DE: "Umzug", Language.FR: "déménagement"}}
    }

    def test_a_label_missing_in_a_language_falls_back_to_german_and_is_logged_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        localiser = Localiser(self.LABELS)
        caplog.set_level(logging.WARNING, logger=LOGGER)
        assert localiser.value("case_type", "relocation", Language.IT) == "Umzug"
        assert localiser.value("case_type", "relocation", Language.IT) == "Umzug"
        assert localiser.value("case_type", "relocation", Language.FR) == "déménagement"
        assert [r.getMessage() for r in caplog.records] == [
            "no case_type label for 'relocation' in it: the German label is used"
        ]

    def test_an_identifier_without_any_label_is_quoted_as_it_is_and_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger=LOGGER)
        assert Localiser(self.LABELS).value("case_type", "dog-licence", Language.DE) == "dog-licence"
        assert [r.getMessage() for r in caplog.records] == [
            "no case_type label for 'dog-licence' in de: quoted as it is"
        ]

    def test_a_text_that_fell_back_to_german_gets_german_values_too(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delitem(templates._TEMPLATES, ("relocation.received", Language.IT))
        message = render("relocation.received", Language.IT, PLACEHOLDERS)
        assert message.language is Language.DE
        assert "per 3. Dezember 2026 erhalten" in message.body

    @pytest.mark.parametrize(
        ("labels", "complaint"),
        [
            ({"case_type": {"relocation": {"fr": "déménagement"}}}, "no de label"),
            ({"case_type": {"relocation": {"de": "Umzug", "rm": "Midada"}}}, "'rm' is not a valid Language"),
            ({"case_type": {"relocation": {"de": " "}}}, "an empty label"),
        ],
    )
    def test_a_malformed_labels_file_stops_loading(
        self, tmp_path: Path, labels: dict[str, object], complaint: str
    ) -> None:
        source = tmp_path / "labels.json"
        source.write_text(json.dumps(labels), encoding="utf-8")
        with pytest.raises(LabelError, match=complaint):
            load_labels(source)


class TestValues:
    def test_the_first_of_a_month_is_an_ordinal_in_french_only(self) -> None:
        first = {name: DEFAULT_LOCALISER.value("move_date", "2026-12-01", name) for name in Language}
        assert first == {
            Language.DE: "1. Dezember 2026",
            Language.FR: "1er décembre 2026",
            Language.IT: "1 dicembre 2026",
            Language.EN: "December 1, 2026",
        }

    def test_a_milestone_written_with_spaces_as_the_registry_sends_it_gets_its_label(self) -> None:
        assert DEFAULT_LOCALISER.value("milestone", "departure confirmed", Language.DE) == "Wegzug bestätigt"

    def test_any_placeholder_holding_an_iso_date_is_written_out(self) -> None:
        # Process definitions may add date placeholders of their own (citizen_placeholders).
        assert DEFAULT_LOCALISER.value("permit_valid_until", "2027-03-31", Language.DE) == "31. März 2027"

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("case_id", "2026-12-03"),  # the citizen quotes it back: never rewritten
            ("move_date", "2026-02-30"),  # no such day: not a date after all
            ("reason", "Die Wohnung ist nicht bewohnbar"),
            ("partner", "Einwohnerdienste Kriens"),
            ("milestone", ""),
        ],
    )
    def test_other_values_stay_as_they_are(self, name: str, value: str) -> None:
        assert DEFAULT_LOCALISER.value(name, value, Language.FR) == value
