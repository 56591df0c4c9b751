"""How ``hub`` commands reach the hub's database: one connection for one piece of work.

A command runs outside any service, once: it connects, does its work and closes. Database
errors become one line for the operator (``hub: error: …``), not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TypeVar

import asyncpg

from hub.errors import DatabaseError, DatabaseUnavailable, HubError, SchemaMissing
from hub.runtime.db import connect
from hub.runtime.endpoints import running_hub_settings
from hub.runtime.schemas import migrate_all
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


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the hub's database").add_subparsers(dest="db_command", required=True)
    migrate = db.add_parser(
        "migrate",
        description="Creates and migrates the schema of every service and the vault, as the role of "
        "HUB_DATABASE_URL (the owner, hub_owner in production), then grants each service role that "
        "exists its own schema's rows and the vault's. Run it before the services start with "
        "HUB_MIGRATE_ON_START=false; running it again applies and grants what is missing.",
        help="create and migrate every service's schema as the owner role (HUB_DATABASE_URL), and "
        "grant each service's role (hub_identity, hub_registry, hub_notifications) its rights",
    )
    migrate.add_argument(
        "--no-grant", action="store_true", help="migrate only; leave the service roles' rights as they are"
    )
    migrate.add_argument("--json", action="store_true", help="print what was done as JSON")
    migrate.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from services import SERVICE_NAMES, load_definition

    plans = [load_definition(name).schema_plan() for name in SERVICE_NAMES]
    done = run_on_database(
        database_settings(),
        lambda conn: migrate_all(conn, plans, grant=not args.no_grant),
        no_tables="the database is missing a table the migrations expect",
        application_name="hub-migrate",
    )
    if args.json:
        print(json.dumps([asdict(result) for result in done], indent=2))
        return 0
    for result in done:
        applied = f"{len(result.applied)} migrations applied" if result.applied else "up to date"
        rights = f"; rights granted to {result.granted_to}" if result.granted_to else ""
        print(f"{result.schema}: {applied}{rights}")
    return 0
