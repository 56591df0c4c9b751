"""The database ``hub`` commands of the identity service work on, opened for one command."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from hub.cli.database import run_on_database
from hub.runtime.settings import HubSettings
from hub.vault.crypto import MasterKey
from services.identity.adapters.postgres.units import SCHEMA, PostgresRepositories
from services.identity.ports import Repositories

T = TypeVar("T")


def run_command(
    settings: HubSettings, work: Callable[[Repositories], Awaitable[T]], *, master: MasterKey | None = None
) -> T:
    """``work`` in one transaction on identity's tables of the hub's database; ``master``
    opens persons' data (None: a command that touches no person). A database error ends the
    command with one line (``HubError``)."""

    async def in_transaction(conn: asyncpg.Connection) -> T:
        async with conn.transaction():
            return await work(PostgresRepositories(conn, master))

    return run_on_database(
        settings,
        in_transaction,
        schema=SCHEMA,
        no_tables="the identity service has not created its tables in this database; run `hub up`",
    )
