"""The two adapters of the registry's ports, as the contract suites run them.

Each suite is an abstract class of tests; a test class is the suite plus one of these
mixins, which gives it a unit of work (``uow``) and what a test needs beyond the ports:
destroying a person's data keys (as ``hub person erase`` does), reading the audit chain
back, and the adapter's ``PersonErasure``. The PostgreSQL unit of work runs in a
transaction that is rolled back after the test; ``OnPostgresCached`` is the same with the
service's cache of partners, keys, subscriptions and the catalogue in front, as its routes
build it: the cache must not change what the ports answer.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from hub.audit import store as audit_store
from hub.audit.chain import SealedEntry
from hub.runtime.messages import RecordingEmitter
from hub.runtime.outbox import OutboxEmitter
from hub.vault import store as vault_store
from hub.vault.crypto import MasterKey
from services.erasure import PersonErasure
from services.registry.adapters.memory import MemoryRegistry, MemoryUnitOfWork
from services.registry.adapters.postgres import PostgresRegistry, PostgresUnitOfWork, RegistryErasure
from services.registry.lookups import LookupCache
from services.registry.model import CatalogEntry
from services.registry.ports import UnitOfWork
from tests.fixtures.registry import AUDIT_KEY, REGISTRY_SOURCE

MOVE = "ch.lu.hub.relocation.move-reported.v1"


class Adapter(abc.ABC):
    @abc.abstractmethod
    async def destroy_person(self, uow: UnitOfWork, vn: str) -> None:
        """Destroy the data keys of the person with AHVN13 ``vn``."""

    @abc.abstractmethod
    async def audit_chain(self, uow: UnitOfWork) -> list[SealedEntry]: ...

    @abc.abstractmethod
    def erasure(self, uow: UnitOfWork) -> PersonErasure: ...


class InMemory(Adapter):
    @pytest_asyncio.fixture
    async def uow(self) -> AsyncIterator[UnitOfWork]:
        registry = MemoryRegistry(audit_key=AUDIT_KEY)
        # The catalogue as the registry's migrations define this entry.
        registry.state.catalogue[MOVE] = CatalogEntry(MOVE, ("portal",), "secret")
        yield registry.unit_of_work(RecordingEmitter(source=REGISTRY_SOURCE))

    async def destroy_person(self, uow: UnitOfWork, vn: str) -> None:
        assert isinstance(uow, MemoryUnitOfWork)
        uow.state.vault.destroy(uow.state.vault.subject_ref(vn))

    async def audit_chain(self, uow: UnitOfWork) -> list[SealedEntry]:
        assert isinstance(uow, MemoryUnitOfWork)
        return list(uow.state.audit)

    def erasure(self, uow: UnitOfWork) -> PersonErasure:
        assert isinstance(uow, MemoryUnitOfWork)
        return MemoryRegistry(uow.state).erasure()


class OnPostgres(Adapter):
    lookups: LookupCache | None = None

    @pytest_asyncio.fixture
    async def uow(self, registry_database: str, vault_master_key: MasterKey) -> AsyncIterator[UnitOfWork]:
        self.master = vault_master_key
        conn = await asyncpg.connect(registry_database, server_settings={"search_path": '"registry",public'})
        transaction = conn.transaction()
        await transaction.start()
        try:
            registry = PostgresRegistry(
                master_key=vault_master_key, audit_key=AUDIT_KEY, lookups=self.lookups
            )
            yield registry(conn, OutboxEmitter(conn, source=REGISTRY_SOURCE))
        finally:
            await transaction.rollback()
            await conn.close()

    async def destroy_person(self, uow: UnitOfWork, vn: str) -> None:
        assert isinstance(uow, PostgresUnitOfWork)
        await vault_store.destroy(uow.conn, refs=[self.master.subject_ref(vn)])

    async def audit_chain(self, uow: UnitOfWork) -> list[SealedEntry]:
        assert isinstance(uow, PostgresUnitOfWork)
        rows = await uow.conn.fetch("SELECT * FROM audit_log ORDER BY seq")
        return [audit_store.sealed_entry(row) for row in rows]

    def erasure(self, uow: UnitOfWork) -> PersonErasure:
        assert isinstance(uow, PostgresUnitOfWork)
        return RegistryErasure(uow.conn)


class OnPostgresCached(OnPostgres):
    # One cache for the class's tests, as one service runtime shares it between its units of
    # work: what a test rolled back must not be served to the next.
    lookups = LookupCache(ttl_s=3600)
