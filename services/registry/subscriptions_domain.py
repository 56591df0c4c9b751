"""Which subscriptions of a partner apply to a case, and what its one delivery carries; no I/O.

A purpose, a legal basis and the fields they justify belong to the party a partner is to a
case, not to the partner alone: a municipality records the departure of one move (RHG
Art. 12) and registers the arrival of another (RHG Art. 11). So a subscription may name a
party slot, and for each event type:

* a subscription naming a slot applies when the partner fills that slot of the case;
* one naming no slot applies to the slots the partner fills that none of its subscriptions
  to the type names (all of them when none names a slot, as before slots existed);
* one with the ``all-cases`` scope applies to every case, party or not (it names no slot).

A partner filling several slots of a case (one municipality on both sides of a move within
it) still receives one delivery per event: the union of the applying subscriptions' fields,
under each of their purposes and legal bases. Each applying subscription is a ``Grant``,
recorded as its own audit entry with the basis it applies on and the fields it accounts for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.registry.domain import Processes
from services.registry.parties_domain import Party, slots_of

ALL_CASES = "all-cases"  # a subscription scope: every case of the type, party or not
PARTY = "party"  # the default scope: only the cases the partner is a party to
TEXT_LIMIT = 500  # what a delivery's purpose and legal basis may hold (``CaseDelivery``)
SEPARATOR = " | "  # between the purposes (legal bases) of one delivery: legal bases contain ";"


@dataclass(frozen=True)
class Subscription:
    """An approved subscription of an active partner to one event type, as routing reads it."""

    partner_id: str
    purpose: str
    legal_basis: str
    fields: tuple[str, ...]
    scope: str = PARTY
    slot: str | None = None


@dataclass(frozen=True)
class Grant:
    """A subscription applying to one case: what it lets the partner see and why.

    ``slots`` are the party slots of the case it serves there; none: it applies under the
    ``all-cases`` scope.
    """

    purpose: str
    legal_basis: str
    fields: tuple[str, ...]
    slots: tuple[str, ...] = ()

    @property
    def basis(self) -> str:
        """What the audit entry records as the ground: ``party: <slots>`` or ``all-cases``."""
        return f"party: {', '.join(self.slots)}" if self.slots else ALL_CASES


def applying(subscriptions: Iterable[Subscription], slots: Sequence[str]) -> tuple[Grant, ...]:
    """The grants of one partner's ``subscriptions`` to one event type for a case in which
    it fills ``slots`` (definition order): ordered by the first slot each serves, then
    ``all-cases``. Empty: the partner receives nothing of the case."""
    mine = tuple(subscriptions)
    named = {s.slot for s in mine if s.slot is not None}
    ranked: list[tuple[int, Grant]] = []
    for subscription in mine:
        if subscription.scope == ALL_CASES:
            ranked.append((len(slots), _grant(subscription, ())))
            continue
        served = tuple(
            slot
            for slot in slots
            if slot == subscription.slot or (subscription.slot is None and slot not in named)
        )
        if served:
            ranked.append((slots.index(served[0]), _grant(subscription, served)))
    return tuple(grant for _, grant in sorted(ranked, key=lambda pair: pair[0]))


def grants_by_partner(
    subscriptions: Iterable[Subscription], parties: Iterable[Party]
) -> dict[str, tuple[Grant, ...]]:
    """Every partner that receives a case's event under ``subscriptions`` (all to one event
    type), with its grants; in the order the partners first appear."""
    case_parties = tuple(parties)
    by_partner: dict[str, list[Subscription]] = {}
    for subscription in subscriptions:
        by_partner.setdefault(subscription.partner_id, []).append(subscription)
    found = {
        partner_id: applying(mine, slots_of(case_parties, partner_id))
        for partner_id, mine in by_partner.items()
    }
    return {partner_id: grants for partner_id, grants in found.items() if grants}


def delivered_fields(grants: Iterable[Grant]) -> tuple[str, ...]:
    """The fields one delivery may carry: every field any applying subscription grants."""
    return tuple(dict.fromkeys(name for grant in grants for name in grant.fields))


def delivered_text(texts: Iterable[str]) -> str:
    """The delivery's purpose (or legal basis): each distinct one of its grants, in order.

    The delivery holds at most ``TEXT_LIMIT`` characters; a longer combination is cut,
    visibly. The audit log keeps every grant's text whole, one entry each.
    """
    text = SEPARATOR.join(dict.fromkeys(texts))
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def delivered_basis(grants: Iterable[Grant]) -> str:
    """The grounds of one delivery, for its timeline step: ``party: <slots>`` of all party
    grants together, and ``all-cases`` if one applies on that scope."""
    applied = tuple(grants)
    slots = tuple(dict.fromkeys(slot for grant in applied for slot in grant.slots))
    grounds = [f"party: {', '.join(slots)}"] if slots else []
    if any(not grant.slots for grant in applied):
        grounds.append(ALL_CASES)
    return "; ".join(grounds)


def undefined_slot(processes: Processes, case_type: str | None, slot: str | None) -> str | None:
    """Why a subscription naming ``slot`` of ``case_type`` could never apply (a typo would
    otherwise leave the partner without deliveries, unnoticed); None: it can."""
    if slot is None:
        return None
    if case_type not in processes.by_case_type:
        return f"slot {slot} belongs to no known case type ({case_type or 'none'} given)"
    names = [party.name for party in processes[case_type].parties]
    if slot not in names:
        return f"the {case_type} case type has no party slot {slot}; its slots: {', '.join(names)}"
    return None


def _grant(subscription: Subscription, slots: tuple[str, ...]) -> Grant:
    return Grant(subscription.purpose, subscription.legal_basis, subscription.fields, slots)
