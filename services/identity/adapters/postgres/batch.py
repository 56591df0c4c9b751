"""Units of work for a batch of pseudonym requests: what the batch will read, read at once.

Answering one ``PseudonymsRequested`` asks a dozen small questions of the database (is
the case erased, who is the person, which partners, which local ids, which pseudonyms are
issued, which key versions are current). For a batch, ``batch_unit_of_work_factory``
asks each of them once for all its requests, one statement per table, inside the batch's
transaction before any handler runs, and keeps the answers in a ``BatchMemo``. The units
of work it then builds answer from the memo first and ask the database for anything it
does not hold.

What keeps the memo truthful:

* It is only ever filled before the first handler and emptied afterwards: a write drops
  the entries it may change (never updates them), so later records of the batch read the
  database, which sees the transaction's own writes and, after a savepoint was rolled
  back, sees that too. The memo thus only ever holds what was true when the batch began.
* A write the memo cannot follow the effects of (a citizen id bound to a key ring, which
  may merge or destroy rings) drops everything the vault's keys decide.
* It lives as long as the factory: the runtime builds one per batch pass and drops it
  with the pass, so the personal data it holds (opened records, local ids) does not
  outlive the batch.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from contracts import LocalPersonId, Person, PseudonymsRequested
from contracts.admin import RegisterPartner
from contracts.identity import PartnerStatus
from hub.errors import ConfigurationError
from hub.runtime.messages import Emitter, Incoming
from hub.vault import store as vault_store
from hub.vault.crypto import MasterKey, TamperedCiphertext, case_ref, citizen_ref
from services.identity.adapters.postgres.partners import PostgresPartners
from services.identity.adapters.postgres.persons import (
    PostgresPersons,
    basis_of,
    local_id_context,
    local_id_index,
    newest_link_first,
    record_context,
    vn_index,
)
from services.identity.adapters.postgres.pseudonyms import PostgresPseudonyms
from services.identity.adapters.postgres.units import PostgresUnitOfWork
from services.identity.domain import CITIZEN_SECTOR, Partner, PseudonymBasis

log = logging.getLogger(__name__)

LocalIdKey = tuple[str, str]  # (category, id) of a register's local person id


def _local_id_key(local_id: LocalPersonId) -> LocalIdKey:
    return (local_id.category, local_id.id)


@dataclass
class BatchMemo:
    """What a batch's requests read, as it stood when the batch began.

    A key that is absent means "not known here, ask the database"; a key with None (or
    False) means the database was asked and had nothing, which is an answer too.
    """

    erased_cases: dict[str, bool] = field(default_factory=dict)
    person_by_vn: dict[str, uuid.UUID | None] = field(default_factory=dict)
    person_by_local_id: dict[LocalIdKey, uuid.UUID | None] = field(default_factory=dict)
    bases: dict[uuid.UUID, PseudonymBasis] = field(default_factory=dict)
    local_ids: dict[uuid.UUID, list[LocalPersonId]] = field(default_factory=dict)
    partners: dict[str, Partner | None] = field(default_factory=dict)
    issued: dict[tuple[uuid.UUID, str], str | None] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    # (person, citizen id) pairs whose binding is in place: the citizen id's reference
    # names a key in the person's key ring already, so binding them again changes nothing.
    citizen_bound: set[tuple[uuid.UUID, str]] = field(default_factory=set)

    def forget_what_keys_decide(self) -> None:
        """Drops every answer that depends on the state of the vault's keys."""
        self.erased_cases.clear()
        self.bases.clear()
        self.local_ids.clear()
        self.citizen_bound.clear()


async def prefetch(
    conn: asyncpg.Connection, master: MasterKey, requests: Sequence[Incoming[PseudonymsRequested]]
) -> BatchMemo:
    """One statement per table for everything ``handlers.issue_pseudonyms`` reads for
    ``requests``, in the order the answers depend on each other."""
    memo = BatchMemo()
    if not requests:
        return memo
    people: list[Person] = [msg.data.person for msg in requests]
    await _persons(conn, master, people, memo)
    await _partners(conn, {r.partner_id for msg in requests for r in msg.data.recipients}, memo)
    sectors = {p.sector for p in memo.partners.values() if p is not None}
    if any(msg.data.citizen_pseudonym for msg in requests):
        sectors.add(CITIZEN_SECTOR)
    await _pseudonyms(conn, sectors, memo)
    await _vault_refs(conn, {msg.case_id for msg in requests}, memo)
    return memo


async def _persons(
    conn: asyncpg.Connection, master: MasterKey, people: Sequence[Person], memo: BatchMemo
) -> None:
    """Persons by their AHVN13's blind index (``Persons.by_vn``), their records (the
    pseudonym basis) and local ids, and the persons the requests' local ids are linked to."""
    vn_of_index = {vn_index(master, someone.vn): someone.vn for someone in people}
    rows = await conn.fetch(
        "SELECT person_id, vn_index, record FROM persons WHERE vn_index = ANY($1::text[])",
        list(vn_of_index),
    )
    memo.person_by_vn = dict.fromkeys(vn_of_index.values())
    for row in rows:
        memo.person_by_vn[vn_of_index[row["vn_index"]]] = row["person_id"]
    found = [row["person_id"] for row in rows]

    asked = {
        _local_id_key(s.local_person_id): s.local_person_id for s in people if s.local_person_id is not None
    }
    categories = [local_id.category for local_id in asked.values()]
    indexes = [local_id_index(master, local_id) for local_id in asked.values()]
    link_rows = await conn.fetch(
        """
        SELECT person_id, category, local_id_index, local_id_sealed, linked_at FROM local_person_ids
        WHERE person_id = ANY($1::uuid[])
           OR (category, local_id_index) IN (SELECT * FROM unnest($2::text[], $3::text[]))
        """,
        found,
        categories,
        indexes,
    )
    linked_to = {(row["category"], row["local_id_index"]): row["person_id"] for row in link_rows}
    memo.person_by_local_id = {
        key: linked_to.get((category, index))
        for key, category, index in zip(asked, categories, indexes, strict=True)
    }

    # The records and the found persons' local ids opened together: one read of their keys.
    links_of: dict[uuid.UUID, list[Any]] = {person_id: [] for person_id in found}
    for row in link_rows:
        if row["person_id"] in links_of:
            links_of[row["person_id"]].append(row)
    sealed = [(row["record"], record_context(row["person_id"])) for row in rows]
    sealed += [
        (link["local_id_sealed"], local_id_context(person_id, link["category"], link["local_id_index"]))
        for person_id, links in links_of.items()
        for link in links
    ]
    try:
        opened = await vault_store.open_json_each(conn, master, sealed)
    except ConfigurationError as error:
        # A key this process cannot unwrap: leave those persons to the records that ask for
        # them, where the failure is the one record's, not the whole batch's.
        log.warning("persons of a batch not read ahead: %s", error)
        return
    records, link_values = opened[: len(rows)], iter(opened[len(rows) :])
    for row, record in zip(rows, records, strict=True):
        if isinstance(record, dict):  # not if erased or tampered: the database answers, as alone
            memo.bases[row["person_id"]] = basis_of(record)
    for person_id, links in links_of.items():
        values = [next(link_values) for _ in links]
        if any(isinstance(value, TamperedCiphertext) for value in values):
            continue
        memo.local_ids[person_id] = newest_link_first(links, values)


async def _partners(conn: asyncpg.Connection, partner_ids: Collection[str], memo: BatchMemo) -> None:
    found = await PostgresPartners(conn).get_many(partner_ids)
    memo.partners = {partner_id: found.get(partner_id) for partner_id in partner_ids}


async def _pseudonyms(conn: asyncpg.Connection, sectors: Collection[str], memo: BatchMemo) -> None:
    """The pseudonyms issued to every (found person, sector) pair, and the sectors'
    current key versions (a sector without one is left to ``current_version``, which
    creates its first)."""
    persons = [person_id for person_id in memo.person_by_vn.values() if person_id is not None]
    if not sectors:
        return
    if persons:
        rows = await conn.fetch(
            "SELECT person_id, sector, pseudonym FROM issued_pseudonyms "
            "WHERE person_id = ANY($1::uuid[]) AND sector = ANY($2::text[])",
            persons,
            list(sectors),
        )
        memo.issued = {(person_id, sector): None for person_id in persons for sector in sectors}
        for row in rows:
            memo.issued[(row["person_id"], row["sector"])] = row["pseudonym"]
    rows = await conn.fetch(
        "SELECT sector, version FROM sector_keys WHERE sector = ANY($1::text[]) AND retired_at IS NULL",
        list(sectors),
    )
    memo.versions = {row["sector"]: row["version"] for row in rows}


async def _vault_refs(conn: asyncpg.Connection, case_ids: Collection[str], memo: BatchMemo) -> None:
    """Which cases are erased (``vault_store.is_erased`` for each case's reference), and
    which issued citizen ids are bound to their person's key ring already."""
    citizens = [
        (person_id, citizen_id)
        for (person_id, sector), citizen_id in memo.issued.items()
        if sector == CITIZEN_SECTOR and citizen_id is not None
    ]
    # The vault's tables, read as hub.vault.store reads them, for all the batch's references at once.
    rows = await conn.fetch(
        """
        SELECT r.ref, k.destroyed_at IS NOT NULL AS destroyed, k.ring, NULL::uuid AS person_id
        FROM vault.key_refs r JOIN vault.data_keys k USING (key_id)
        WHERE r.ref = ANY($1::text[])
        UNION ALL
        SELECT NULL, NULL, k.ring, p.person_id
        FROM persons p JOIN vault.data_keys k USING (key_id)
        WHERE p.person_id = ANY($2::uuid[])
        """,
        [case_ref(case_id) for case_id in case_ids] + [citizen_ref(c) for _, c in citizens],
        [person_id for person_id, _ in citizens],
    )
    destroyed = {row["ref"]: row["destroyed"] for row in rows if row["ref"] is not None}
    ring_of_ref = {row["ref"]: row["ring"] for row in rows if row["ref"] is not None}
    ring_of_person = {row["person_id"]: row["ring"] for row in rows if row["person_id"] is not None}
    memo.erased_cases = {case_id: bool(destroyed.get(case_ref(case_id))) for case_id in case_ids}
    memo.citizen_bound = {
        (person_id, citizen_id)
        for person_id, citizen_id in citizens
        if ring_of_person.get(person_id) is not None
        and ring_of_ref.get(citizen_ref(citizen_id)) == ring_of_person[person_id]
    }


class PrefetchedPersons(PostgresPersons):
    """``PostgresPersons`` answering from the batch's memo first."""

    def __init__(self, conn: asyncpg.Connection, master: MasterKey, memo: BatchMemo) -> None:
        super().__init__(conn, master)
        self._memo = memo

    async def by_vn(self, vn: str) -> uuid.UUID | None:
        if vn in self._memo.person_by_vn:
            return self._memo.person_by_vn[vn]
        return await super().by_vn(vn)

    async def by_local_id(self, local_id: LocalPersonId) -> uuid.UUID | None:
        key = _local_id_key(local_id)
        if key in self._memo.person_by_local_id:
            return self._memo.person_by_local_id[key]
        return await super().by_local_id(local_id)

    async def pseudonym_basis(self, person_id: uuid.UUID) -> PseudonymBasis:
        basis = self._memo.bases.get(person_id)
        return basis if basis is not None else await super().pseudonym_basis(person_id)

    async def local_ids_of(self, person_id: uuid.UUID) -> list[LocalPersonId]:
        local_ids = self._memo.local_ids.get(person_id)
        return list(local_ids) if local_ids is not None else await super().local_ids_of(person_id)

    async def case_erased(self, case_id: str) -> bool:
        erased = self._memo.erased_cases.get(case_id)
        return erased if erased is not None else await super().case_erased(case_id)

    async def add(self, person: Person, *, pseudonym_seed: bytes) -> uuid.UUID:
        self._memo.person_by_vn.pop(person.vn, None)
        return await super().add(person, pseudonym_seed=pseudonym_seed)

    async def link_local_id(self, person_id: uuid.UUID, local_id: LocalPersonId) -> None:
        key = _local_id_key(local_id)
        if self._memo.person_by_local_id.get(key) is not None:
            # Linked to someone when the batch began, and links are never removed here: the
            # insert would change nothing (an id linked already keeps its link).
            return
        self._memo.person_by_local_id.pop(key, None)
        self._memo.local_ids.pop(person_id, None)
        await super().link_local_id(person_id, local_id)

    async def bind_citizen(self, person_id: uuid.UUID, citizen_id: str) -> None:
        if (person_id, citizen_id) in self._memo.citizen_bound:
            return  # the reference is in the person's ring already: binding again changes nothing
        # Binding may merge key rings or destroy one (data linked to an erased person):
        # whatever the memo knows of keys may no longer hold.
        self._memo.forget_what_keys_decide()
        await super().bind_citizen(person_id, citizen_id)


class PrefetchedPseudonyms(PostgresPseudonyms):
    """``PostgresPseudonyms`` answering from the batch's memo first."""

    def __init__(self, conn: asyncpg.Connection, memo: BatchMemo) -> None:
        super().__init__(conn)
        self._memo = memo

    async def issued(self, person_id: uuid.UUID, sector: str) -> str | None:
        pair = (person_id, sector)
        if pair in self._memo.issued:
            return self._memo.issued[pair]
        return await super().issued(person_id, sector)

    async def current_version(self, sector: str) -> int:
        version = self._memo.versions.get(sector)
        return version if version is not None else await super().current_version(sector)

    async def record(self, person_id: uuid.UUID, sector: str, pseudonym: str, key_version: int) -> str:
        self._memo.issued.pop((person_id, sector), None)
        return await super().record(person_id, sector, pseudonym, key_version)

    async def rotate(self, sector: str) -> int:
        self._memo.versions.pop(sector, None)
        return await super().rotate(sector)


class PrefetchedPartners(PostgresPartners):
    """``PostgresPartners`` answering plain reads from the batch's memo first; a read that
    locks (``for_update``) always goes to the database."""

    def __init__(self, conn: asyncpg.Connection, memo: BatchMemo) -> None:
        super().__init__(conn)
        self._memo = memo

    async def get(self, partner_id: str, *, for_update: bool = False) -> Partner | None:
        if not for_update and partner_id in self._memo.partners:
            return self._memo.partners[partner_id]
        return await super().get(partner_id, for_update=for_update)

    async def get_many(self, partner_ids: Collection[str]) -> dict[str, Partner]:
        if not all(partner_id in self._memo.partners for partner_id in partner_ids):
            return await super().get_many(partner_ids)
        found = {partner_id: self._memo.partners[partner_id] for partner_id in partner_ids}
        return {partner_id: partner for partner_id, partner in found.items() if partner is not None}

    async def upsert(self, command: RegisterPartner) -> Partner:
        self._memo.partners.pop(command.partner_id, None)
        return await super().upsert(command)

    async def set_status(self, partner_id: str, status: PartnerStatus, reason: str | None) -> Partner | None:
        self._memo.partners.pop(partner_id, None)
        return await super().set_status(partner_id, status, reason)

    async def mark_announced(self, partner_id: str) -> None:
        self._memo.partners.pop(partner_id, None)
        await super().mark_announced(partner_id)


@dataclass
class PrefetchedUnitOfWork(PostgresUnitOfWork):
    """A record's unit of work in a batch: the batch's transaction, and its memo."""

    memo: BatchMemo = field(kw_only=True, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        master = self.persons.master
        self.persons = PrefetchedPersons(self.conn, master, self.memo)
        self.pseudonyms = PrefetchedPseudonyms(self.conn, self.memo)
        self.partners = PrefetchedPartners(self.conn, self.memo)


# What the runtime's BatchUnitOfWork returns (hub.runtime.consumer), with the type it builds.
UnitOfWorkBuilder = Callable[[asyncpg.Connection, Emitter], PostgresUnitOfWork]
BatchUnitOfWorkBuilder = Callable[[asyncpg.Connection, Sequence[Incoming[Any]]], Awaitable[UnitOfWorkBuilder]]


def batch_unit_of_work_factory(master: MasterKey) -> BatchUnitOfWorkBuilder:
    """For a route (``Route.batch_unit_of_work``): called with the batch's transaction and
    records, reads ahead for its pseudonym requests and returns the factory of the
    records' units of work."""

    async def for_batch(conn: asyncpg.Connection, incomings: Sequence[Incoming[Any]]) -> UnitOfWorkBuilder:
        requests = [msg for msg in incomings if isinstance(msg.data, PseudonymsRequested)]
        memo = await prefetch(conn, master, requests)

        def unit_of_work(record_conn: asyncpg.Connection, emitter: Emitter) -> PostgresUnitOfWork:
            if record_conn is not conn:
                # The memo describes the batch's transaction only; any other reads the database.
                return PostgresUnitOfWork(record_conn, master, emitter=emitter)
            return PrefetchedUnitOfWork(conn, master, emitter=emitter, memo=memo)

        return unit_of_work

    return for_batch
