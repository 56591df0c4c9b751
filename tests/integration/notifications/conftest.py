"""The notifications schema on real PostgreSQL, and helpers to run its handlers as the consumer would."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio

from contracts import Contract, Envelope, Language, NotificationRequested
from hub.runtime.db import create_pool
from hub.runtime.messages import Incoming
from hub.runtime.migrations import apply_migrations, load_migrations
from hub.runtime.outbox import OutboxEmitter
from hub.runtime.telemetry import current_trace_id
from hub.vault.crypto import MasterKey
from hub.vault.schema import migrate_vault
from services.notifications import handlers
from services.notifications.adapters.postgres import PostgresUnitsOfWork, unit_of_work_factory
from tests.fixtures.sms_provider import sms_provider
from tests.integration.notifications.webhook_receiver import webhook_receiver

__all__ = ["sms_provider", "webhook_receiver"]  # fixtures, shared with this folder's tests

SOURCE = "urn:ch:lu:hub:service:notifications"
REGISTRY = "urn:ch:lu:hub:service:registry"
PLACEHOLDERS = {
    "case_id": "eumzug-1",
    "case_type": "relocation",
    "step": "received",
    "first_name": "Anna",
    "official_name": "Muster",
    "milestone": "",
    "reason": "",
    "partner": "",
    "departure": "Kriens",
    "arrival": "Luzern",
    "move_date": "2026-12-01",
}


async def migrated_pool(database_url: str) -> asyncpg.Pool:
    pool = await create_pool(database_url, "notifications", size=4)
    async with pool.acquire() as conn:
        await apply_migrations(
            conn,
            load_migrations("hub-runtime", "hub.runtime.sql")
            + load_migrations("notifications", "services.notifications.migrations"),
        )
        await migrate_vault(conn)  # the per-person data keys (hub/vault.py)
    return pool


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await migrated_pool(database_url)
    yield pool
    await pool.close()


def request(notification_id: str = "eumzug-1:received", **changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "notification_id": notification_id,
        "recipient": "anna.muster@example.ch",
        "language": Language.DE,
        "template": "relocation.received",
        "placeholders": PLACEHOLDERS,
    }
    return NotificationRequested(**(fields | changes))


def incoming(
    data: Contract, *, case_id: str = "eumzug-1", test_delivery: bool = False, topic: str = "t"
) -> Incoming[Any]:
    envelope = Envelope.new(data, source=REGISTRY, business_process_id=case_id, test_delivery=test_delivery)
    return Incoming(
        envelope=envelope, data=data, topic=topic, partition=0, offset=0, trace_id=current_trace_id()
    )


def units(pool: asyncpg.Pool, master: MasterKey) -> PostgresUnitsOfWork:
    """Units of work as the service's workers open them, with the master key it is given."""
    return PostgresUnitsOfWork(pool, master=master, emitter=functools.partial(OutboxEmitter, source=SOURCE))


async def handle(
    pool: asyncpg.Pool, master: MasterKey, handler: Any, msg: Incoming[Any], **deps: Any
) -> None:
    """What the consumer does with a record: the handler in one transaction, with the unit of work
    the service's route builds over it."""
    async with pool.acquire() as conn, conn.transaction():
        uow = unit_of_work_factory(master)(conn, OutboxEmitter(conn, source=SOURCE))
        await handler(msg, uow, **deps)


async def accept(
    pool: asyncpg.Pool, master: MasterKey, msg: Incoming[Any], *, sms_available: bool = False
) -> None:
    await handle(pool, master, handlers.accept_notification, msg, sms_available=sms_available)


async def history(pool: asyncpg.Pool, notification_id: str) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status FROM notification_status_history WHERE notification_id = $1 ORDER BY id",
            notification_id,
        )
    return [row["status"] for row in rows]


async def status_events(pool: asyncpg.Pool, notification_id: str) -> list[dict[str, Any]]:
    """The NotificationStatusChanged events waiting in the outbox for this notification, in order."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload, traceparent FROM outbox WHERE type = 'ch.lu.hub.notification.status-changed.v1' "
            "ORDER BY seq"
        )
    events = [json.loads(row["payload"]) | {"traceparent": row["traceparent"]} for row in rows]
    return [e for e in events if e["notification_id"] == notification_id]
