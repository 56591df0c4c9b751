"""The database ``hub`` commands of the notifications service work on, opened for one command."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from hub.errors import DatabaseError, DatabaseUnavailable
from hub.runtime.db import create_pool
from hub.runtime.migrations import apply_migrations, load_migrations
from hub.runtime.settings import HubSettings
from hub.vault.crypto import MasterKey
from hub.vault.schema import migrate_vault
from services.notifications.adapters.postgres.units import PostgresRepositories

SCHEMA = "notifications"


@contextlib.asynccontextmanager
async def command_repositories(
    settings: HubSettings, master: MasterKey | None
) -> AsyncIterator[PostgresRepositories]:
    """The service's stores on a connection of their own; ``master`` opens sealed data
    (None: a command that reads and writes none). A database error ends the command with
    one line (``RuntimeError``)."""
    pool = await create_pool(settings.database_dsn(), SCHEMA, size=1)
    try:
        async with pool.acquire() as conn:
            # The service may never have run against this database; its tables are needed now.
            migrations = load_migrations("hub-runtime", "hub.runtime.sql") + load_migrations(
                SCHEMA, "services.notifications.migrations"
            )
            await apply_migrations(conn, migrations)
            await migrate_vault(conn)
            yield PostgresRepositories(conn, master)
    except (DatabaseError, DatabaseUnavailable) as error:
        raise RuntimeError(f"database: {error}") from error
    finally:
        await pool.close()
