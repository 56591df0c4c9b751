"""What the in-memory adapter keeps: plain dataclasses in dicts, nothing sealed.

Erasure is modelled as the vault would make it look: a person whose key was destroyed
reads as ``Erased``, and a case whose key was destroyed is erased. ``MemoryStore`` also
has the set-up a test needs that no port offers (a partner written by hand, an erased case).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from contracts import Person
from services.identity.domain import Partner, PartnerKey


@dataclass
class StoredPerson:
    person: Person  # without a local id: those are linked apart
    seed: bytes
    key_id: uuid.UUID
    created: int  # the order persons were stored in
    destroyed: bool = False  # their data key is destroyed: their data reads as erased
    forgotten: bool = False  # erased: no lookup finds them any more


@dataclass
class LinkedId:
    person_id: uuid.UUID
    linked: int  # the unit of work that linked it: later units' links are newer


@dataclass
class StoredPartner:
    partner: Partner
    status_reason: str | None
    registered_at: dt.datetime
    updated_at: dt.datetime
    announced_at: dt.datetime | None


@dataclass
class StoredKey:
    key: PartnerKey
    registered_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class MemoryState:
    persons: dict[uuid.UUID, StoredPerson] = field(default_factory=dict)
    local_ids: dict[tuple[str, str], LinkedId] = field(default_factory=dict)  # (category, id)
    reviews: list[dict[str, object]] = field(default_factory=list)
    sector_keys: dict[str, int] = field(default_factory=dict)  # sector: current version
    issued: dict[tuple[uuid.UUID, str], tuple[str, int]] = field(default_factory=dict)  # pseudonym, version
    citizen_keys: dict[str, uuid.UUID] = field(default_factory=dict)  # citizen id: the person's key
    erased_cases: set[str] = field(default_factory=set)
    partners: dict[str, StoredPartner] = field(default_factory=dict)
    partner_keys: dict[str, StoredKey] = field(default_factory=dict)


class MemoryStore:
    """The state every unit of work on it shares; a unit that fails is rolled back by its
    ``MemoryUnitsOfWork``."""

    def __init__(self) -> None:
        self.state = MemoryState()
        self.unavailable = False  # set: every unit of work fails as with the database away
        self._units = 0

    def next_unit(self) -> int:
        self._units += 1
        return self._units

    def put_partner(self, partner: Partner, *, announced: bool | None = None) -> None:
        """A partner as if written into the register by hand (migrations seed some so)."""
        now = dt.datetime.now(dt.UTC)
        is_announced = partner.announced if announced is None else announced
        self.state.partners[partner.partner_id] = StoredPartner(
            partner, None, now, now, now if is_announced else None
        )

    def erase_case(self, case_id: str) -> None:
        """The case's data key destroyed, as ``hub person erase`` leaves it."""
        self.state.erased_cases.add(case_id)

    def destroy_keys(self, key_ids: list[uuid.UUID] | tuple[uuid.UUID, ...]) -> int:
        """The vault's part of an erasure: the persons with these keys read as erased."""
        destroyed = 0
        for stored in self.state.persons.values():
            if stored.key_id in key_ids and not stored.destroyed:
                stored.destroyed = True
                destroyed += 1
        return destroyed
