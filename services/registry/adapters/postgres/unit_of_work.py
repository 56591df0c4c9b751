"""The registry's unit of work over one PostgreSQL transaction, and the factory that builds it.

The runtime opens the transaction of each record and hands the factory its connection and
an outbox emitter (``hub.runtime.consumer.Route.unit_of_work``); workers get theirs from
``transactional``. The keys (the vault's master key, the audit chain's key) and the cache
of what rarely changes (``services.registry.lookups``) come from the composition root,
never from a process global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg

from hub.audit.chain import AuditKey
from hub.errors import DatabaseConflict, DatabaseError, DatabaseUnavailable
from hub.runtime.db import translate
from hub.runtime.messages import Emitter
from hub.runtime.outbox import OutboxEmitter
from hub.vault.crypto import MasterKey
from services.registry.adapters.postgres.audit import PostgresAuditLog
from services.registry.adapters.postgres.cached import (
    CachedCatalogue,
    CachedPartnerKeys,
    CachedPartners,
    CachedSubscriptions,
    UnitLookups,
)
from services.registry.adapters.postgres.cases import (
    PostgresCases,
    PostgresPending,
    PostgresTimeline,
    Sealing,
)
from services.registry.adapters.postgres.partners import (
    PostgresCaseParties,
    PostgresCatalogue,
    PostgresPartnerKeys,
    PostgresPartners,
    PostgresSubscriptions,
)
from services.registry.errors import StorageFailed
from services.registry.figures import AfterCommit, NoFigures
from services.registry.lookups import LookupCache
from services.registry.ports import (
    CaseFigures,
    Catalogue,
    PartnerDirectory,
    PartnerKeys,
    Subscriptions,
    Transactional,
    Work,
)

T = TypeVar("T")


@dataclass
class PostgresUnitOfWork:
    conn: asyncpg.Connection
    emitter: Emitter
    master_key: MasterKey = field(repr=False)
    audit_key: AuditKey = field(repr=False)
    sink: CaseFigures = field(default_factory=NoFigures)
    # None: every lookup reads the transaction (commands, tools, tests of the SQL itself).
    lookups: LookupCache | None = None

    def __post_init__(self) -> None:
        self.figures = AfterCommit(self.emitter, self.sink)
        sealing = Sealing(self.conn, self.master_key)
        self.cases = PostgresCases(self.conn, sealing)
        self.timeline = PostgresTimeline(self.conn, sealing)
        self.pending = PostgresPending(self.conn, sealing)
        self.parties = PostgresCaseParties(self.conn)
        self.audit = PostgresAuditLog(self.conn, self.audit_key, self.emitter)
        partners = PostgresPartners(self.conn)
        catalogue = PostgresCatalogue(self.conn)
        subscriptions = PostgresSubscriptions(self.conn)
        partner_keys = PostgresPartnerKeys(self.conn)
        if self.lookups is None:
            self.partners: PartnerDirectory = partners
            self.catalogue: Catalogue = catalogue
            self.subscriptions: Subscriptions = subscriptions
            self.partner_keys: PartnerKeys = partner_keys
            return
        cached = UnitLookups(self.lookups, self.emitter)
        self.partners = CachedPartners(partners, cached)
        self.catalogue = CachedCatalogue(catalogue, cached)
        self.subscriptions = CachedSubscriptions(subscriptions, cached)
        self.partner_keys = CachedPartnerKeys(partner_keys, cached)


@dataclass(frozen=True)
class PostgresRegistry:
    """Builds the registry's unit of work on a connection whose transaction is open."""

    master_key: MasterKey = field(repr=False)
    audit_key: AuditKey = field(repr=False)
    # Where the case figures go (the service's /metrics); counted after each commit.
    figures: CaseFigures = field(default_factory=NoFigures)
    # The service runtime's cache of partners, keys, subscriptions and the catalogue, shared
    # by every unit of work built here; None reads them from each transaction.
    lookups: LookupCache | None = None

    def __call__(self, conn: asyncpg.Connection, emitter: Emitter) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(conn, emitter, self.master_key, self.audit_key, self.figures, self.lookups)

    def on(self, conn: asyncpg.Connection, *, source: str) -> PostgresUnitOfWork:
        """On a connection someone else holds in a transaction (the dead-letter hook's)."""
        return self(conn, OutboxEmitter(conn, source=source))

    def transactional(self, pool: asyncpg.Pool, *, source: str) -> Transactional:
        """Each call runs its work in a transaction of its own, committed when it returns."""

        async def run(work: Work[T]) -> T:
            try:
                async with pool.acquire() as conn:
                    async with conn.transaction():
                        uow = self.on(conn, source=source)
                        result = await work(uow)
                    uow.emitter.committed()
                    return result
            except DatabaseError as error:  # a statement the database refused, not an outage
                raise StorageFailed(f"{type(error).__name__}: {error}") from error
            except OSError as error:  # the pool could not (re)connect: the database is away
                raise DatabaseUnavailable(f"PostgreSQL unreachable: {error}") from error
            except Exception as error:
                if isinstance(translated := translate(error), DatabaseUnavailable | DatabaseConflict):
                    raise translated from error
                raise

        return run
