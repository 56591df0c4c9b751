"""Citizen message templates: data files shipped in this package, versioned, per language.

One file per template, ``<name>.json``::

    {"name": "relocation.received",
     "versions": [{"version": 1,
                   "optional": {"partner": ""},
                   "languages": {"de": {"subject": "...", "body": "...", "sms": "..."}, ...}}]}

The highest version is current; older ones stay so that what a citizen received can be
rendered again. Every version has German, the fallback language. Placeholders use
``string.Template`` syntax (``$first_name``): it cannot run code, and ``substitute``
fails loudly on a missing placeholder unless the version declares it optional with a
default. ``sms`` is optional; SMS sends the body otherwise.

Placeholder values are put in the language of the text they go into before they are
substituted (``services/notifications/localisation.py``): dates in the long form, case types
and milestones by their labels. A text that fell back to German gets German values too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from string import Template
from typing import Any

from contracts import Language
from services.notifications.localisation import DEFAULT_LOCALISER, FALLBACK_LANGUAGE, Localiser

__all__ = [
    "FALLBACK_LANGUAGE",
    "GENERIC_STEPS",
    "MessageTemplate",
    "MissingPlaceholder",
    "RenderedMessage",
    "TemplateError",
    "TemplateSet",
    "UnknownTemplate",
    "load_templates",
    "render",
]

GENERIC_CASE = "case"
# Steps every case type has; any other step is a milestone ("case.milestone").
GENERIC_STEPS = ("received", "completed", "rejected", "escalated", "action-required")
_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")


class TemplateError(ValueError):
    """A template file is malformed; raised when loading, so a bad file stops the service at start."""


class UnknownTemplate(LookupError):
    pass


class MissingPlaceholder(KeyError):
    """The request lacks a placeholder the template needs (a ``KeyError``, as ``substitute`` raises)."""


@dataclass(frozen=True)
class MessageTemplate:
    name: str
    version: int
    language: Language
    subject: str
    body: str
    sms: str | None = None
    optional: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderedMessage:
    template: str  # the name requested (what the producer asked for)
    version: int
    language: Language
    subject: str
    body: str
    sms: str = ""  # the text an SMS carries
    source: str = ""  # the template actually rendered: the requested one or its generic fallback


def generic_name(name: str) -> str | None:
    """'building-permit.completed' -> 'case.completed'; other steps -> 'case.milestone'."""
    case_type, _, step = name.partition(".")
    if not step or case_type == GENERIC_CASE:
        return None
    return f"{GENERIC_CASE}.{step if step in GENERIC_STEPS else 'milestone'}"


class TemplateSet:
    def __init__(self, templates: Iterable[MessageTemplate], localiser: Localiser | None = None) -> None:
        self.localiser = localiser or DEFAULT_LOCALISER
        self.versions: dict[tuple[str, int, Language], MessageTemplate] = {}
        latest: dict[str, int] = {}
        for template in templates:
            self.versions[(template.name, template.version, template.language)] = template
            latest[template.name] = max(latest.get(template.name, 0), template.version)
        # The current version per (name, language): what new notifications are rendered from.
        self.current: dict[tuple[str, Language], MessageTemplate] = {
            (name, language): template
            for (name, version, language), template in self.versions.items()
            if version == latest[name]
        }

    def names(self) -> set[str]:
        return {name for name, _ in self.current}

    def render(
        self,
        name: str,
        language: Language,
        placeholders: Mapping[str, str],
        *,
        version: int | None = None,
    ) -> RenderedMessage:
        """Render ``name`` (or its generic step) in ``language``, else German.

        ``version`` renders an older version again, e.g. to show what a citizen received.
        """
        template = self._find(name, language, version)
        # In the template's language, not the one asked for: a fallback text gets German values.
        values = self.localiser.placeholders({**template.optional, **placeholders}, template.language)
        where = f"template {template.name} v{template.version} ({template.language})"
        try:
            subject = Template(template.subject).substitute(values)
            body = Template(template.body).substitute(values)
            sms = Template(template.sms).substitute(values) if template.sms else body
        except KeyError as error:
            raise MissingPlaceholder(f"{where} needs placeholder {error}") from None
        return RenderedMessage(name, template.version, template.language, subject, body, sms, template.name)

    def _find(self, name: str, language: Language, version: int | None) -> MessageTemplate:
        names = self.names()
        generic = generic_name(name)
        chosen = name if name in names else generic if generic in names else None
        if chosen is None:
            raise UnknownTemplate(f"no template {name!r}")
        for lang in (language, FALLBACK_LANGUAGE):
            found = (
                self.current.get((chosen, lang))
                if version is None
                else self.versions.get((chosen, version, lang))
            )
            if found is not None:
                return found
        raise UnknownTemplate(f"no version {version} of template {chosen!r}")


def load_templates(folder: Traversable) -> TemplateSet:
    templates: list[MessageTemplate] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            templates.extend(_parse(entry.name.removesuffix(".json"), json.loads(entry.read_text("utf-8"))))
    return TemplateSet(templates)


def _parse(file_name: str, document: dict[str, Any]) -> list[MessageTemplate]:
    name = document.get("name")
    if name != file_name or not _NAME.fullmatch(name):
        raise TemplateError(f"{file_name}.json: name {name!r} must match the file name")
    parsed: list[MessageTemplate] = []
    for entry in document.get("versions") or []:
        version, languages = entry.get("version"), entry.get("languages", {})
        optional = dict(entry.get("optional", {}))
        if not isinstance(version, int) or version < 1:
            raise TemplateError(f"{name}: version {version!r} is not a positive integer")
        if FALLBACK_LANGUAGE.value not in languages:
            raise TemplateError(f"{name} v{version}: no {FALLBACK_LANGUAGE} text to fall back on")
        for code, texts in languages.items():
            template = MessageTemplate(
                name, version, Language(code), texts["subject"], texts["body"], texts.get("sms"), optional
            )
            for text in filter(None, (template.subject, template.body, template.sms)):
                if not Template(text).is_valid():
                    raise TemplateError(f"{name} v{version} ({code}): invalid placeholder in {text!r}")
            parsed.append(template)
    if not parsed:
        raise TemplateError(f"{name}: no versions")
    return parsed


_DEFAULT = load_templates(resources.files(__name__))
# The current templates by (name, language); a module attribute so tests can remove a translation.
_TEMPLATES = _DEFAULT.current


def render(name: str, language: Language, placeholders: Mapping[str, str]) -> RenderedMessage:
    """Render with the templates shipped in this package (see ``TemplateSet.render``)."""
    return _DEFAULT.render(name, language, placeholders)
