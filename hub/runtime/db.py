"""PostgreSQL access: one asyncpg pool per service, pinned to the service's schema, and the
one place where asyncpg's exceptions become the hub's.

Each service owns one schema and sets it as the connection's search_path, so its
SQL stays unqualified and two services can never write each other's tables by accident.

Every connection the hub opens (``create_pool``, ``connect``) is a ``HubConnection``: a
failed statement raises from ``hub.errors`` (``DatabaseUnavailable``, ``DatabaseConflict``,
``UniqueViolation``, ``SchemaMissing``, ``DatabaseError``), the original chained as its
cause. Code that meets asyncpg's exceptions elsewhere (acquiring from a pool, a commit)
passes them through ``translate``. Nothing else in the hub names an asyncpg exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import asyncpg.exceptions as pg

from hub.errors import (
    DatabaseConflict,
    DatabaseError,
    DatabaseUnavailable,
    HubError,
    SchemaMissing,
    UniqueViolation,
)
from hub.runtime.schemas import create_schema

T = TypeVar("T")

# The database, not the statement: it is away, restarting, full, or the connection broke.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,  # "connection is closed", "released back to the pool"
    # A connection lost mid-operation (database restart) can leave asyncpg's protocol
    # in a state it reports as "cannot switch to state N".
    pg.InternalClientError,
    pg.PostgresConnectionError,
    pg.CannotConnectNowError,
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.TooManyConnectionsError,
    pg.OperatorInterventionError,
)


# Whatever a loop that only reads and writes the database may meet when it is away or
# restarting, translated or not yet (acquiring from a pool raises asyncpg's own): such a
# loop backs off and tries again rather than dying.
DATABASE_FAILURES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    DatabaseConflict,
    DatabaseError,
    OSError,
    asyncpg.PostgresError,
    *_UNAVAILABLE,
)


def translate(error: BaseException) -> BaseException:
    """The hub's exception for one asyncpg raised; any other exception unchanged."""
    if isinstance(error, HubError):
        return error
    if isinstance(error, _UNAVAILABLE):
        return DatabaseUnavailable(f"PostgreSQL unavailable: {error}")
    if not isinstance(error, asyncpg.PostgresError):
        return error
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(error, pg.TransactionRollbackError):  # serialization failure, deadlock
        return DatabaseConflict(str(error))
    if isinstance(error, pg.UniqueViolationError):
        return UniqueViolation(str(error), sqlstate=sqlstate)
    if isinstance(error, pg.UndefinedTableError | pg.UndefinedColumnError):
        return SchemaMissing(str(error), sqlstate=sqlstate)
    return DatabaseError(str(error), sqlstate=sqlstate)


async def plan_afresh_in_this_transaction(conn: asyncpg.Connection) -> None:
    """Plan this transaction's statements anew each time they run, not from a cached plan.

    For a claim whose best plan depends on how many rows wait, which changes by the thousand
    within seconds (an outbox, due notices): a plan cached while the table was nearly empty
    (a statement prepared at start) scanned every waiting row per due one until the next
    ANALYZE, and the claims stalled for tens of seconds. Planning costs about a millisecond.
    """
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def translated(call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``, with asyncpg's exceptions raised as the hub's."""
    try:
        return await call()
    except Exception as error:
        hub_error = translate(error)
        if hub_error is error:
            raise
        raise hub_error from error


class HubConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no stubs
    """A connection whose statements raise the hub's exceptions (``translate``)."""

    # The signatures are asyncpg's, options (its ``timeout`` among them) passed on unchanged.
    async def execute(self, query: str, *args: Any, **options: Any) -> str:
        return await translated(lambda: super(HubConnection, self).execute(query, *args, **options))

    async def executemany(self, command: str, args: Any, **options: Any) -> None:
        await translated(lambda: super(HubConnection, self).executemany(command, args, **options))

    async def fetch(self, query: str, *args: Any, **options: Any) -> list[Any]:
        return await translated(lambda: super(HubConnection, self).fetch(query, *args, **options))

    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
        return await translated(lambda: super(HubConnection, self).fetchrow(query, *args, **options))

    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
        return await translated(lambda: super(HubConnection, self).fetchval(query, *args, **options))


async def connect(
    dsn: str, *, schema: str | None = None, application_name: str = "hub", connect_timeout_s: float = 60
) -> HubConnection:
    """One connection (a command, a check), with ``schema`` as its search path if given."""
    server_settings = {"application_name": application_name}
    if schema is not None:
        server_settings["search_path"] = f'"{schema}"'
    try:
        conn: HubConnection = await asyncpg.connect(
            dsn, server_settings=server_settings, timeout=connect_timeout_s, connection_class=HubConnection
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # Refused at the door (starting up, no such database yet, too many clients): to
        # whoever connects, PostgreSQL is not there yet.
        raise DatabaseUnavailable(f"cannot reach PostgreSQL: {error}") from error
    return conn


async def create_pool(dsn: str, schema: str, *, size: int) -> asyncpg.Pool:
    """Open a pool whose connections see only ``schema`` (and public for extensions)."""
    admin = await connect(dsn)
    try:
        await create_schema(admin, schema)
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        connection_class=HubConnection,
        server_settings={"search_path": f'"{schema}",public', "application_name": f"hub-{schema}"},
    )
    assert pool is not None  # create_pool only returns None when used as an awaitable context
    return pool
