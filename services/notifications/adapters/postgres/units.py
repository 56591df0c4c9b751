"""The unit of work over one PostgreSQL transaction, for handlers and for workers.

A consumer's route builds it over the transaction the runtime opened for a record
(``unit_of_work_factory``); a worker opens its own transactions from the pool
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
from hub.vault.crypto import MasterKey
from services.notifications.adapters.postgres.citizens import PostgresInbox, PostgresPreferences
from services.notifications.adapters.postgres.notifications import PostgresNotifications
from services.notifications.adapters.postgres.webhooks import PostgresWebhooks

# The trigger on notifications notifies this channel when notices are queued (migration 0001).
DUE_CHANNEL = "notifications_due"


@dataclass
class PostgresRepositories:
    """Every store of the service on one connection; ``master`` may be None for work that
    reads and writes nothing sealed (a ``hub`` command on preferences or webhooks)."""

    conn: asyncpg.Connection = field(repr=False)
    master: MasterKey | None = field(repr=False)
    notifications: PostgresNotifications = field(init=False)
    preferences: PostgresPreferences = field(init=False)
    inbox: PostgresInbox = field(init=False)
    webhooks: PostgresWebhooks = field(init=False)

    def __post_init__(self) -> None:
        self.notifications = PostgresNotifications(self.conn, self.master)
        self.preferences = PostgresPreferences(self.conn)
        self.inbox = PostgresInbox(self.conn, self.master)
        self.webhooks = PostgresWebhooks(self.conn)


@dataclass
class PostgresUnitOfWork(PostgresRepositories):
    emitter: Emitter = field(kw_only=True)


def unit_of_work_factory(master: MasterKey) -> Callable[[asyncpg.Connection, Emitter], PostgresUnitOfWork]:
    """For a route: the runtime calls it with the record's transaction and its outbox emitter."""

    def unit_of_work(conn: asyncpg.Connection, emitter: Emitter) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(conn, master, emitter=emitter)

    return unit_of_work


class PostgresUnitsOfWork:
    """Each unit on a connection of ``pool``, in a transaction of its own; ``emitter`` builds
    the emitter that writes a unit's events into the outbox on that connection."""

    def __init__(
        self, pool: asyncpg.Pool, *, master: MasterKey, emitter: Callable[[asyncpg.Connection], Emitter]
    ) -> None:
        self._pool, self._master, self._emitter = pool, master, emitter

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[PostgresUnitOfWork]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield PostgresUnitOfWork(conn, self._master, emitter=self._emitter(conn))
        except DATABASE_FAILURES as error:
            raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error

    @contextlib.asynccontextmanager
    async def on_due(self, wake: Callable[[], None]) -> AsyncIterator[None]:
        def notified(*_: object) -> None:
            wake()

        try:
            listener: asyncpg.Connection = await self._pool.acquire()
            try:
                await listener.add_listener(DUE_CHANNEL, notified)
            except BaseException:
                await self._pool.release(listener)
                raise
        except DATABASE_FAILURES as error:
            raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error
        try:
            yield
        finally:
            # A connection going back to the pool with a listener still attached is an error to
            # asyncpg; and a dead connection (database restarted) must not fail the worker here.
            with contextlib.suppress(*DATABASE_FAILURES):
                await listener.remove_listener(DUE_CHANNEL, notified)
            with contextlib.suppress(*DATABASE_FAILURES):
                await self._pool.release(listener)
