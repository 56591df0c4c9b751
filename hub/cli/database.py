"""How ``hub`` commands reach the hub's database: one connection for one piece of work.

A command runs outside any service, once: it connects, does its work and closes. Database
errors become one line for the operator (``hub: error: …``), not a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from hub.errors import DatabaseError, DatabaseUnavailable, HubError, SchemaMissing
from hub.runtime.db import connect
from hub.runtime.endpoints import running_hub_settings
from hub.runtime.settings import HubSettings

T = TypeVar("T")


def running_hub() -> HubSettings:
    """The hub an operator command works on: the environment's Kafka and PostgreSQL if both
    are set, else the endpoints of the ``hub up`` running in the state directory."""
    return running_hub_settings(HubSettings())


def database_settings() -> HubSettings:
    """Only the database is needed: HUB_DATABASE_URL, else the running hub's endpoints."""
    settings = HubSettings()
    return settings if settings.database_url is not None else running_hub_settings(settings)


def run_on_database(
    settings: HubSettings,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    no_tables: str,
    schema: str | None = None,
    application_name: str = "hub-cli",
) -> T:
    """``work`` on a connection of its own (``schema`` its search path, if given).
    ``no_tables`` is what the operator is told when a table is missing: the service that
    creates it has never run against this database."""

    async def run() -> T:
        conn = await connect(settings.database_dsn(), schema=schema, application_name=application_name)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(run())
    except SchemaMissing:
        raise HubError(no_tables) from None
    except (DatabaseError, DatabaseUnavailable) as error:
        raise HubError(f"database: {error}") from None
