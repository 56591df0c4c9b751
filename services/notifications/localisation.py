"""Placeholder values in the reader's language: dates, and the names of case types and milestones.

The registry fills a notice's placeholders with what it knows: identifiers (``relocation``,
``departure-confirmed``, an escalation's ``departure-confirmed, arrival-registered``) and ISO
dates (``2026-12-03``). A citizen should read neither: just before a template is filled, each
value becomes the words, or the long date (Babel, CLDR), of the language the notice is
rendered in: "Umzug", "3. Dezember 2026"; "déménagement", "3 décembre 2026".

Labels are data, ``labels.json``: ``{kind: {identifier: {language: text}}}``. Every label has
German, the city's language and the fallback. French, Italian and English labels are written
as they read inside a sentence (lower case): the templates quote them mid-sentence.

A label missing in the notice's language falls back to German; an identifier with no label at
all is quoted as it is, so the notice still goes out. Either is logged (once per process and
label, not at every notice). The tests hold every case type and milestone of the registry's
process definitions to a label in all four languages, so neither happens unnoticed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable

from babel import Locale
from babel.dates import format_date

from contracts import Language

__all__ = [
    "DATE_LOCALES",
    "FALLBACK_LANGUAGE",
    "LABELLED_PLACEHOLDERS",
    "LabelError",
    "Localiser",
    "iso_date",
    "load_labels",
    "long_date",
]

log = logging.getLogger(__name__)

FALLBACK_LANGUAGE = Language.DE
# The Swiss variants: de_CH, fr_CH and it_CH are how Lucerne's citizens write dates.
DATE_LOCALES: Mapping[Language, Locale] = {
    Language.DE: Locale.parse("de_CH"),
    Language.FR: Locale.parse("fr_CH"),
    Language.IT: Locale.parse("it_CH"),
    Language.EN: Locale.parse("en"),
}
# The placeholders whose values are identifiers, by the kind of label they name (labels.json).
LABELLED_PLACEHOLDERS: Mapping[str, str] = {"case_type": "case_type", "milestone": "milestone"}
# Quoted exactly, whatever they look like: the citizen quotes the case id back to the city.
VERBATIM_PLACEHOLDERS = frozenset({"case_id"})
# An escalation lists the missing milestones in one value, separated so.
LIST_SEPARATOR = ", "
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Labels = Mapping[str, Mapping[str, Mapping[Language, str]]]


class LabelError(ValueError):
    """labels.json is malformed; raised when loading, so a bad file stops the service at start."""


def iso_date(value: str) -> dt.date | None:
    """The date ``value`` spells as ``YYYY-MM-DD``; None for anything else, e.g. ``2026-02-30``."""
    if not _ISO_DATE.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def long_date(date: dt.date, language: Language) -> str:
    """The long form: "3. Dezember 2026", "3 décembre 2026", "3 dicembre 2026", "December 3, 2026"."""
    locale = DATE_LOCALES.get(language)
    if locale is None:
        log.warning("no date locale for %s: the date is written in German", language)
        locale = DATE_LOCALES[FALLBACK_LANGUAGE]
    text = format_date(date, format="long", locale=locale)
    # French writes the first of a month as an ordinal ("1er décembre"); CLDR has no such form.
    if locale.language == "fr" and date.day == 1 and text.startswith("1 "):
        text = "1er" + text[1:]
    return text


class Localiser:
    def __init__(self, labels: Labels) -> None:
        self.labels = labels
        self._reported: set[tuple[str, str, Language]] = set()

    def placeholders(self, values: Mapping[str, str], language: Language) -> dict[str, str]:
        """``values`` as a reader of ``language`` should see them."""
        return {name: self.value(name, value, language) for name, value in values.items()}

    def value(self, name: str, value: str, language: Language) -> str:
        if not value or name in VERBATIM_PLACEHOLDERS:
            return value
        kind = LABELLED_PLACEHOLDERS.get(name)
        if kind is not None:
            items = value.split(LIST_SEPARATOR)
            return LIST_SEPARATOR.join(self.label(kind, item, language) for item in items)
        date = iso_date(value)
        return value if date is None else long_date(date, language)

    def label(self, kind: str, identifier: str, language: Language) -> str:
        """The label of ``identifier`` in ``language``, else in German, else the identifier itself."""
        # The registry writes a reached milestone with spaces for dashes ("departure confirmed").
        key = identifier.strip().replace(" ", "-")
        texts = self.labels.get(kind, {}).get(key)
        if texts is None:
            self._report(kind, key, language, "quoted as it is")
            return identifier
        text = texts.get(language)
        if text is None:
            self._report(kind, key, language, "the German label is used")
            return texts[FALLBACK_LANGUAGE]
        return text

    def _report(self, kind: str, key: str, language: Language, consequence: str) -> None:
        if (kind, key, language) in self._reported:
            return
        self._reported.add((kind, key, language))
        log.warning("no %s label for %r in %s: %s", kind, key, language.value, consequence)


def load_labels(source: Traversable) -> Localiser:
    document = json.loads(source.read_text("utf-8"))
    labels: dict[str, dict[str, dict[Language, str]]] = {}
    for kind, entries in document.items():
        for identifier, texts in entries.items():
            where = f"{source.name}: {kind} {identifier!r}"
            if FALLBACK_LANGUAGE.value not in texts:
                raise LabelError(f"{where}: no {FALLBACK_LANGUAGE} label to fall back on")
            try:
                by_language = {Language(code): text for code, text in texts.items()}
            except ValueError as error:
                raise LabelError(f"{where}: {error}") from None
            if not all(isinstance(text, str) and text.strip() for text in by_language.values()):
                raise LabelError(f"{where}: an empty label")
            labels.setdefault(kind, {})[identifier] = by_language
    return Localiser(labels)


# The labels shipped in this package, read once per process.
DEFAULT_LOCALISER = load_labels(resources.files("services.notifications") / "labels.json")
