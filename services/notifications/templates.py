"""Citizen message templates per language, versioned; German is the fallback language.

Placeholders use ``string.Template`` syntax (``$first_name``) because it cannot run code
and fails loudly on a missing placeholder.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

from contracts import Language

FALLBACK_LANGUAGE = Language.DE


@dataclass(frozen=True)
class MessageTemplate:
    name: str
    version: int
    language: Language
    subject: str
    body: str


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    version: int
    language: Language
    subject: str
    body: str


_TEMPLATES: dict[tuple[str, Language], MessageTemplate] = {}


def _add(name: str, version: int, language: Language, subject: str, body: str) -> None:
    _TEMPLATES[(name, language)] = MessageTemplate(name, version, language, subject, body)


_add(
    "relocation.received",
    1,
    Language.DE,
    "Ihre Umzugsmeldung $case_id ist eingegangen",
    "Guten Tag $first_name $official_name\n\nWir haben Ihre Meldung des Umzugs von $departure nach "
    "$arrival per $move_date erhalten. Die beteiligten Stellen werden informiert.\n\nFall: $case_id\n",
)
_add(
    "relocation.received",
    1,
    Language.FR,
    "Votre annonce de déménagement $case_id a été reçue",
    "Bonjour $first_name $official_name\n\nNous avons reçu l'annonce de votre déménagement de $departure "
    "à $arrival au $move_date. Les services concernés sont informés.\n\nDossier : $case_id\n",
)
_add(
    "relocation.received",
    1,
    Language.IT,
    "La sua notifica di trasloco $case_id è stata ricevuta",
    "Buongiorno $first_name $official_name\n\nAbbiamo ricevuto la notifica del trasloco da $departure a "
    "$arrival il $move_date. Gli uffici interessati sono informati.\n\nPratica: $case_id\n",
)
_add(
    "relocation.received",
    1,
    Language.EN,
    "Your move report $case_id has been received",
    "Hello $first_name $official_name\n\nWe received your report of the move from $departure to $arrival "
    "on $move_date. The agencies involved are being informed.\n\nCase: $case_id\n",
)
_add(
    "relocation.completed",
    1,
    Language.DE,
    "Ihr Umzug $case_id ist abgeschlossen",
    "Guten Tag $first_name $official_name\n\nAlle Stellen haben Ihren Umzug nach $arrival bearbeitet. "
    "Sie müssen nichts weiter tun.\n\nFall: $case_id\n",
)
_add(
    "relocation.completed",
    1,
    Language.FR,
    "Votre déménagement $case_id est terminé",
    "Bonjour $first_name $official_name\n\nTous les services ont traité votre déménagement à $arrival. "
    "Vous n'avez plus rien à faire.\n\nDossier : $case_id\n",
)
_add(
    "relocation.completed",
    1,
    Language.IT,
    "Il suo trasloco $case_id è concluso",
    "Buongiorno $first_name $official_name\n\nTutti gli uffici hanno trattato il suo trasloco a $arrival. "
    "Non deve fare altro.\n\nPratica: $case_id\n",
)
_add(
    "relocation.completed",
    1,
    Language.EN,
    "Your move $case_id is complete",
    "Hello $first_name $official_name\n\nEvery agency has processed your move to $arrival. "
    "There is nothing more you need to do.\n\nCase: $case_id\n",
)


class UnknownTemplate(LookupError):
    pass


def render(name: str, language: Language, placeholders: dict[str, str]) -> RenderedMessage:
    """Render in the citizen's language, or in German when that translation is missing."""
    template = _TEMPLATES.get((name, language)) or _TEMPLATES.get((name, FALLBACK_LANGUAGE))
    if template is None:
        raise UnknownTemplate(f"no template {name!r}")
    return RenderedMessage(
        template=name,
        version=template.version,
        language=template.language,
        subject=Template(template.subject).substitute(placeholders),
        body=Template(template.body).substitute(placeholders),
    )
