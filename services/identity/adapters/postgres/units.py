"""The unit of work over one PostgreSQL transaction, for handlers and for the announcer.

A consumer's route builds it over the transaction the runtime opened for a record
(``unit_of_work_factory``); the announcer opens its own transactions from the pool
(``PostgresUnitsOfWork``), where the database being away becomes ``DatabaseUnavailable``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg

from hub.errors import DatabaseUnavailable
from hub.runtime.db import DATABASE_FAILURES
from hub.runtime.messages import Emitter
from hub.runtime.outbox import OutboxEmitter
from hub.vault.crypto import MasterKey
from services.identity.adapters.postgres.partners import PostgresPartnerKeys, PostgresPartners
from services.identity.adapters.postgres.persons import PostgresMatchReviews, PostgresPersons
from services.identity.adapters.postgres.pseudonyms import PostgresPseudonyms

SCHEMA = "identity"  # the service's tables; bootstrap.NAME names the service the same


@dataclass
class PostgresRepositories:
    """Every store of the service on one connection; ``master`` may be None for work that
    finds, reads and writes no person (a ``hub`` command on partners, keys or reviews)."""

    conn: asyncpg.Connection = field(repr=False)
    master: MasterKey | None = field(repr=False)
    persons: PostgresPersons = field(init=False)
    reviews: PostgresMatchReviews = field(init=False)
    pseudonyms: PostgresPseudonyms = field(init=False)
    partners: PostgresPartners = field(init=False)
    partner_keys: PostgresPartnerKeys = field(init=False)

    def __post_init__(self) -> None:
        self.persons = PostgresPersons(self.conn, self.master)
        self.reviews = PostgresMatchReviews(self.conn)
        self.pseudonyms = PostgresPseudonyms(self.conn)
        self.partners = PostgresPartners(self.conn)
        self.partner_keys = PostgresPartnerKeys(self.conn)


@dataclass
class PostgresUnitOfWork(PostgresRepositories):
    emitter: Emitter = field(kw_only=True)


def unit_of_work_factory(master: MasterKey) -> Callable[[asyncpg.Connection, Emitter], PostgresUnitOfWork]:
    """For a route: the runtime calls it with the record's transaction and its outbox emitter."""

    def unit_of_work(conn: asyncpg.Connection, emitter: Emitter) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(conn, master, emitter=emitter)

    return unit_of_work


class PostgresUnitsOfWork:
    """Each unit on a connection of ``pool``, in a transaction of its own; its events go to
    the outbox on that connection, sent as ``source``."""

    def __init__(self, pool: asyncpg.Pool, *, master: MasterKey, source: str) -> None:
        self._pool, self._master, self._source = pool, master, source

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[PostgresUnitOfWork]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield PostgresUnitOfWork(conn, self._master, emitter=OutboxEmitter(conn, source=self._source))
        except DATABASE_FAILURES as error:  # the database is away: a worker waits and tries again
            raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error
