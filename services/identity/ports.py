"""What the identity service needs of its stores, as handlers and workers see them.

No connection appears here: the PostgreSQL adapter binds these to a transaction
(``adapters/postgres``), the in-memory one to dicts (``adapters/memory``), and one
contract suite runs against both (``tests/contract/identity``). A person's AHVN13, names,
sex, date of birth, local ids and pseudonym seed are personal data: the PostgreSQL adapter
seals them under the person's data key, so once the person is erased they read as
``Erased`` and no lookup finds the person any more.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from contracts import LocalPersonId, Person
from contracts.admin import RegisterPartner
from contracts.identity import PartnerStatus
from hub.runtime.messages import Emitter
from hub.vault.crypto import Erased
from services.erasure import PersonErasure
from services.identity.domain import Partner, PartnerKey, PseudonymBasis

__all__ = [
    "ErasureSubject",
    "ListingRow",
    "LocatingErasure",
    "MatchReviews",
    "PartnerKeys",
    "Partners",
    "Persons",
    "Pseudonyms",
    "Repositories",
    "UnitOfWork",
    "UnitsOfWork",
]

# One row of a ``hub`` listing, printed as it is (``--json``) or as a line of text.
ListingRow = dict[str, Any]


class Persons(Protocol):
    """Persons, found by AHVN13, by a register's local id, or by name and date of birth."""

    async def by_vn(self, vn: str) -> uuid.UUID | None:
        """The person with this AHVN13; None if none, or if they were erased."""
        ...

    async def by_local_id(self, local_id: LocalPersonId) -> uuid.UUID | None:
        """The person a register's id is linked to; None if none."""
        ...

    async def names_born_on(self, date_of_birth: dt.date) -> list[tuple[uuid.UUID, str, str]]:
        """Everyone (not erased) born that day with official and first name, oldest first:
        the domain decides who looks alike."""
        ...

    async def add(self, person: Person, *, pseudonym_seed: bytes) -> uuid.UUID:
        """A new person (without their local id: ``link_local_id``), with their pseudonym seed."""
        ...

    async def pseudonym_basis(self, person_id: uuid.UUID) -> PseudonymBasis:
        """The AHVN13 as first recorded and the seed. Raises ``TransientError`` if the person
        was erased after being found: a retry no longer finds them."""
        ...

    async def record(self, person_id: uuid.UUID) -> Person | Erased | None:
        """The person's data as stored (no local id, no seed); ``Erased`` once erased; None
        for no such person."""
        ...

    async def link_local_id(self, person_id: uuid.UUID, local_id: LocalPersonId) -> None:
        """Links a register's id to the person; an id linked to someone already keeps its
        link, and nothing is added to an erased person."""
        ...

    async def local_ids_of(self, person_id: uuid.UUID) -> list[LocalPersonId]:
        """Newest link first (a register's renumbered id wins over its old one), ties by id."""
        ...

    async def bind_citizen(self, person_id: uuid.UUID, citizen_id: str) -> None:
        """The citizen id reaches the person's data key too, so that data other services keep
        by citizen id is erased with the person."""
        ...

    async def case_erased(self, case_id: str) -> bool:
        """Whether the person of this case was erased (the case's key was destroyed)."""
        ...


class MatchReviews(Protocol):
    """Persons matched on name and date of birth only, waiting for a human decision."""

    async def add(
        self,
        *,
        new_person_id: uuid.UUID,
        candidate_person_id: uuid.UUID,
        reason: str,
        business_process_id: str,
    ) -> None:
        """Once per pair of persons."""
        ...

    async def open(self) -> list[ListingRow]:
        """Oldest first: id, new_person_id, candidate_person_id, reason, business_process_id,
        created_at; ids only, never a person's data."""
        ...


class Pseudonyms(Protocol):
    """Sector key versions and the pseudonyms issued under them."""

    async def current_version(self, sector: str) -> int:
        """The key version new (person, sector) pairs get; 1 on a sector's first use."""
        ...

    async def rotate(self, sector: str) -> int:
        """Retires the sector's current key version and starts the next; returns it."""
        ...

    async def issued(self, person_id: uuid.UUID, sector: str) -> str | None: ...

    async def record(self, person_id: uuid.UUID, sector: str, pseudonym: str, key_version: int) -> str:
        """Stores the pair's pseudonym unless one is stored already; returns the stored one
        (of two concurrent requests for a new pair, the first to commit wins)."""
        ...


class Partners(Protocol):
    """The partner register."""

    async def get(self, partner_id: str, *, for_update: bool = False) -> Partner | None:
        """``for_update``: no other unit of work changes the partner until this one ends."""
        ...

    async def get_many(self, partner_ids: Collection[str]) -> dict[str, Partner]: ...

    async def upsert(self, command: RegisterPartner) -> Partner:
        """A new partner (active), or a new description of a known one; its status stays."""
        ...

    async def set_status(self, partner_id: str, status: PartnerStatus, reason: str | None) -> Partner | None:
        """None for an unknown partner."""
        ...

    async def claim_unannounced(self, limit: int) -> list[Partner]:
        """Up to ``limit`` partners never announced, by id; a partner another unit of work
        claimed is not handed out again until it ends."""
        ...

    async def mark_announced(self, partner_id: str) -> None: ...

    async def listing(self) -> list[ListingRow]:
        """Every partner for ``hub partner list``, by id, the jurisdiction as one object."""
        ...


class PartnerKeys(Protocol):
    """Partners' public signing keys."""

    async def get(self, key_id: str, *, for_update: bool = False) -> PartnerKey | None: ...

    async def key_id_of(self, public_key: str) -> str | None:
        """The id this public key is registered under, if any."""
        ...

    async def upsert(
        self,
        *,
        key_id: str,
        partner_id: str,
        algorithm: str,
        public_key: str,
        valid_from: dt.datetime,
        valid_until: dt.datetime | None,
    ) -> PartnerKey:
        """A new key, or a new window for the same key (the caller checked it is the same)."""
        ...

    async def revoke(self, key_id: str, reason: str | None) -> PartnerKey:
        """Revoked now; the key must exist."""
        ...

    async def listing(self, partner_id: str | None = None) -> list[ListingRow]:
        """Every key (of one partner), for ``hub partner key list``, by partner, start, id."""
        ...


class Repositories(Protocol):
    """Every store of the service, as one unit of work or one ``hub`` command sees them."""

    @property
    def persons(self) -> Persons: ...

    @property
    def reviews(self) -> MatchReviews: ...

    @property
    def pseudonyms(self) -> Pseudonyms: ...

    @property
    def partners(self) -> Partners: ...

    @property
    def partner_keys(self) -> PartnerKeys: ...


class UnitOfWork(Repositories, Protocol):
    """What a handler gets: the stores, and the emitter whose events leave only if the
    unit of work commits."""

    @property
    def emitter(self) -> Emitter: ...


class UnitsOfWork(Protocol):
    """Units of work for the workers, which run outside a consumer's transaction."""

    def begin(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work that commits when the block ends and rolls back if it raises.
        The store being unreachable raises ``hub.errors.DatabaseUnavailable``."""
        ...


@dataclass(frozen=True)
class ErasureSubject:
    """Whom an erasure found, and what reaches their data keys."""

    person_ids: frozenset[uuid.UUID]
    citizen_ids: frozenset[str]
    refs: tuple[str, ...]  # vault references: subject (AHVN13) and citizen ids
    key_ids: tuple[uuid.UUID, ...]  # the persons' own data keys


class LocatingErasure(PersonErasure, Protocol):
    """identity's part of ``hub person erase``: first find the person (before their keys
    are destroyed, while their record still opens), then, once the keys are gone, drop
    what could still find them."""

    async def locate(self, *, vn: str | None, citizen_id: str | None) -> ErasureSubject:
        """The persons known by this AHVN13 or citizen id, all their citizen ids, and the
        references and keys that reach them (the AHVN13's subject reference even if no
        person is stored: another service may have keyed data by it)."""
        ...
