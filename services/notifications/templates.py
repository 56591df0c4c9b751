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


_add(
    "relocation.rejected",
    1,
    Language.DE,
    "Ihre Umzugsmeldung $case_id wurde abgelehnt",
    "Guten Tag $first_name $official_name\n\n$partner hat Ihre Umzugsmeldung abgelehnt.\n"
    "Begründung: $reason\n\nFall: $case_id\n",
)
_add(
    "relocation.rejected",
    1,
    Language.FR,
    "Votre annonce de déménagement $case_id a été refusée",
    "Bonjour $first_name $official_name\n\n$partner a refusé votre annonce.\nMotif : $reason\n\n"
    "Dossier : $case_id\n",
)
_add(
    "relocation.rejected",
    1,
    Language.IT,
    "La sua notifica di trasloco $case_id è stata respinta",
    "Buongiorno $first_name $official_name\n\n$partner ha respinto la notifica.\nMotivo: $reason\n\n"
    "Pratica: $case_id\n",
)
_add(
    "relocation.rejected",
    1,
    Language.EN,
    "Your move report $case_id was rejected",
    "Hello $first_name $official_name\n\n$partner rejected your move report.\nReason: $reason\n\n"
    "Case: $case_id\n",
)
# Generic steps: any case type without its own template for a step uses these.
_add(
    "case.received",
    1,
    Language.DE,
    "Ihr Anliegen $case_id ist eingegangen",
    "Guten Tag $first_name $official_name\n\nIhr Anliegen ($case_type) ist eingegangen.\n\nFall: $case_id\n",
)
_add(
    "case.received",
    1,
    Language.EN,
    "Your request $case_id has been received",
    "Hello $first_name $official_name\n\nYour request ($case_type) has been received.\n\nCase: $case_id\n",
)
_add(
    "case.milestone",
    1,
    Language.DE,
    "Fortschritt in Ihrem Fall $case_id",
    "Guten Tag $first_name $official_name\n\n$partner: $milestone.\n\nFall: $case_id\n",
)
_add(
    "case.milestone",
    1,
    Language.EN,
    "Progress on your case $case_id",
    "Hello $first_name $official_name\n\n$partner: $milestone.\n\nCase: $case_id\n",
)
_add(
    "case.completed",
    1,
    Language.DE,
    "Ihr Fall $case_id ist abgeschlossen",
    "Guten Tag $first_name $official_name\n\nAlle Stellen haben Ihr Anliegen bearbeitet.\n\nFall: $case_id\n",
)
_add(
    "case.completed",
    1,
    Language.EN,
    "Your case $case_id is complete",
    "Hello $first_name $official_name\n\nEvery agency has processed your request.\n\nCase: $case_id\n",
)
_add(
    "case.rejected",
    1,
    Language.DE,
    "Ihr Anliegen $case_id wurde abgelehnt",
    "Guten Tag $first_name $official_name\n\n$partner hat abgelehnt. Begründung: $reason\n\nFall: $case_id\n",
)
_add(
    "case.rejected",
    1,
    Language.EN,
    "Your request $case_id was rejected",
    "Hello $first_name $official_name\n\n$partner rejected it. Reason: $reason\n\nCase: $case_id\n",
)
_add(
    "case.escalated",
    1,
    Language.DE,
    "Frist verpasst: Fall $case_id ($case_type)",
    "Der Fall $case_id ($case_type) hat seine Frist verpasst.\nFehlende Schritte: $milestone\n",
)
_add(
    "case.escalated",
    1,
    Language.EN,
    "Deadline missed: case $case_id ($case_type)",
    "Case $case_id ($case_type) missed its deadline.\nMissing steps: $milestone\n",
)

GENERIC_STEPS = ("received", "completed", "rejected", "escalated")


class UnknownTemplate(LookupError):
    pass


def render(name: str, language: Language, placeholders: dict[str, str]) -> RenderedMessage:
    """Render in the citizen's language, or in German when that translation is missing.

    A case type without a template of its own for a step ("<case_type>.<step>") gets the
    generic one ("case.<step>", milestones: "case.milestone").
    """
    step = name.rsplit(".", 1)[-1]
    generic = "" if "." not in name else f"case.{step}" if step in GENERIC_STEPS else "case.milestone"
    template = (
        _TEMPLATES.get((name, language))
        or _TEMPLATES.get((name, FALLBACK_LANGUAGE))
        or _TEMPLATES.get((generic, language))
        or _TEMPLATES.get((generic, FALLBACK_LANGUAGE))
    )
    if template is None:
        raise UnknownTemplate(f"no template {name!r}")
    return RenderedMessage(
        template=name,
        version=template.version,
        language=template.language,
        subject=Template(template.subject).substitute(placeholders),
        body=Template(template.body).substitute(placeholders),
    )
