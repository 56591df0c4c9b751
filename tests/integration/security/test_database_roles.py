"""Least privilege in PostgreSQL: ``hub db migrate`` as the owner, each service as its own role.

The owner creates and migrates every schema and grants each service's role its own
schema's rows and the vault's. A service role then runs its service, but cannot read or
write another service's tables, change its schema, or rewrite the audit log: it may only
append to and read the chain, and it owns nothing whose triggers it could disable.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from hub.audit import store as audit_store
from hub.audit.chain import AuditEntry, AuditKey, Decision
from hub.errors import ConfigurationError, DatabaseError
from hub.runtime.db import connect
from hub.runtime.schemas import migrate_all, missing_migrations, require_migrated
from hub.runtime.service import ServiceRuntime
from hub.runtime.settings import HubSettings
from services import SERVICE_NAMES, load_definition

pytestmark = pytest.mark.asyncio

INSUFFICIENT_PRIVILEGE = "42501"
PLANS = [load_definition(name).schema_plan() for name in SERVICE_NAMES]


def as_role(database_url: str, role: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))


async def _create_roles(conn: asyncpg.Connection) -> None:
    for plan in PLANS:
        # Roles belong to the cluster, which other tests' databases share: create them once.
        await conn.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{plan.role}') "
            f'THEN CREATE ROLE "{plan.role}" LOGIN; END IF; END $$'
        )


@pytest_asyncio.fixture
async def migrated(database_url: str) -> AsyncIterator[str]:
    """The database as ``hub db migrate`` leaves it, run by the owner (here the superuser)."""
    owner = await connect(database_url)
    try:
        await _create_roles(owner)
        done = await migrate_all(owner, PLANS, grant=True)
    finally:
        await owner.close()
    assert {result.schema: result.granted_to for result in done} == {
        "identity": "hub_identity",
        "registry": "hub_registry",
        "notifications": "hub_notifications",
    }
    yield database_url


async def _refused(database_url: str, role: str, statement: str) -> str | None:
    """The SQLSTATE with which PostgreSQL refuses ``statement`` to ``role``, None if it ran."""
    conn = await connect(as_role(database_url, role))
    try:
        async with conn.transaction():
            await conn.execute(statement)
    except DatabaseError as error:
        return error.sqlstate
    finally:
        await conn.close()
    return None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE registry.audit_log SET event_type = 'x'",
        "DELETE FROM registry.audit_log",
        "TRUNCATE registry.audit_log",
        "ALTER TABLE registry.audit_log DISABLE TRIGGER audit_log_append_only",
        "DROP TABLE registry.audit_log",
        "CREATE TABLE registry.shadow_log (seq bigint)",
        "ALTER TABLE registry.audit_log OWNER TO hub_registry",
        "SELECT * FROM identity.persons",
        "SELECT * FROM notifications.notifications",
        "DELETE FROM identity.schema_migrations",
        "CREATE SCHEMA elsewhere",
    ],
)
async def test_the_registrys_role_cannot_rewrite_the_log_or_reach_another_schema(
    migrated: str, statement: str
) -> None:
    assert await _refused(migrated, "hub_registry", statement) == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize(
    ("role", "statement"),
    [
        ("hub_identity", "SELECT * FROM registry.cases"),
        ("hub_identity", "SELECT * FROM registry.audit_log"),
        ("hub_notifications", "DELETE FROM registry.audit_log"),
        ("hub_notifications", "SELECT * FROM identity.persons"),
        ("hub_identity", "DROP TABLE identity.persons"),
        ("hub_notifications", "ALTER TABLE notifications.notifications ADD COLUMN leak text"),
    ],
)
async def test_no_service_role_reaches_another_schema_or_changes_its_own(
    migrated: str, role: str, statement: str
) -> None:
    assert await _refused(migrated, role, statement) == INSUFFICIENT_PRIVILEGE


async def test_the_registrys_role_appends_to_the_chain_and_reads_it(migrated: str) -> None:
    key = AuditKey(secrets.token_bytes(32))
    entry = AuditEntry(
        decision=Decision.REFUSED,
        case_id="eumzug-1",
        case_type="",
        event_id="e-1",
        event_type="ch.lu.hub.relocation.arrival-registered.v1",
        trace_id="0" * 32,
        partner_id="CH/MUN/1024/einwohnerdienste",
        reason="NotAParty: not a party to eumzug-1",
        reason_class="not-a-party",
        sender_verified=True,
    )
    conn = await connect(as_role(migrated, "hub_registry"), schema="registry")
    try:
        async with conn.transaction():
            await audit_store.append(conn, key, [entry])
        verdict = await audit_store.verify(conn, key)
    finally:
        await conn.close()
    assert verdict.intact, verdict
    assert verdict.entries == 1


async def test_each_service_runs_as_its_own_role_on_the_migrated_schema(
    migrated: str, hub_settings: HubSettings
) -> None:
    runtimes = [
        ServiceRuntime(
            load_definition(name),
            hub_settings.model_copy(
                update={
                    "database_url": type(hub_settings.database_url)(as_role(migrated, f"hub_{name}")),
                    "migrate_on_start": False,
                }
            ),
        )
        for name in SERVICE_NAMES
    ]
    started = await asyncio.gather(*(runtime.start() for runtime in runtimes), return_exceptions=True)
    try:
        assert [outcome for outcome in started if outcome is not None] == []
        for runtime in runtimes:
            checks = await runtime.readiness()
            assert checks["ok_database"] is True, checks
    finally:
        await asyncio.gather(*(runtime.stop() for runtime in runtimes))


async def test_a_service_refuses_a_schema_that_is_behind(database_url: str) -> None:
    conn = await connect(database_url)
    try:
        await _create_roles(conn)
        plan = PLANS[SERVICE_NAMES.index("registry")]
        assert len(await missing_migrations(conn, plan)) > 10
        with pytest.raises(ConfigurationError, match="run `hub db migrate`"):
            await require_migrated(conn, plan)
        await migrate_all(conn, PLANS, grant=False)
        await require_migrated(conn, plan)
    finally:
        await conn.close()


async def test_migrating_again_applies_nothing_and_keeps_the_rights(migrated: str) -> None:
    owner = await connect(migrated)
    try:
        again = await migrate_all(owner, PLANS, grant=True)
    finally:
        await owner.close()
    assert [result.applied for result in again] == [(), (), ()]
    assert await _refused(migrated, "hub_registry", "SELECT count(*) FROM registry.audit_log") is None
