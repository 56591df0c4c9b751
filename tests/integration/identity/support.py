"""Helpers to run identity's handlers as the consumer would, against real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts import (
    Envelope,
    Person,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
    Sector,
    parse_data,
)
from hub.local.seed import seed_demo_partners
from hub.runtime.db import create_pool
from hub.runtime.messages import Incoming
from hub.runtime.migrations import apply_migrations, load_migrations
from hub.runtime.outbox import OutboxEmitter
from hub.vault.crypto import MasterKey
from hub.vault.schema import migrate_vault
from services.identity import handlers
from services.identity.adapters.postgres import PostgresUnitOfWork
from services.identity.ports import UnitOfWork

# What the unit tests build events and persons with, shared so that both levels mean the same.
from tests.unit.identity.support import (  # noqa: F401 (re-exported for the integration tests)
    CLI,
    IDENTITY,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    OPS,
    PORTAL,
    REGISTRY,
    SECRET,
    TAX_OFFICE,
    incoming,
    person,
    vn,
)

SEEDED = {
    PORTAL,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    TAX_OFFICE,
    "CH/MUN/1061/baudirektion",
    "CH/CAN/LU/uwe",
    "CH/CAN/LU/gvl",
    OPS,
    "CH/MUN/1024/einwohnerdienste",
    "CH/MUN/1711/einwohnerdienste",
    "CH/CAN/ZG/steuerverwaltung",
}
Handler = Callable[[Incoming[Any], UnitOfWork], Awaitable[None]]


async def migrated_pool(database_url: str) -> asyncpg.Pool:
    pool = await create_pool(database_url, "identity", size=4)
    async with pool.acquire() as conn:
        await apply_migrations(
            conn,
            load_migrations("hub-runtime", "hub.runtime.sql")
            + load_migrations("identity", "services.identity.migrations"),
        )
        await migrate_vault(conn)  # the per-person data keys
        await seed_demo_partners(conn, ("identity",))  # as hub up seeds them
    return pool


async def handle(
    pool: asyncpg.Pool, master: MasterKey, handler: Handler, msg: Incoming[Any]
) -> list[Envelope]:
    """The handler in one transaction, as the consumer runs it, with the units of work the
    service builds over ``master``; returns what it emitted."""
    async with pool.acquire() as conn, conn.transaction():
        emitter = OutboxEmitter(conn, source=IDENTITY)
        await handler(msg, PostgresUnitOfWork(conn, master, emitter=emitter))
    return [emitted.envelope for emitted in emitter.emitted]


def request(someone: Person, *partners: tuple[str, Sector]) -> PseudonymsRequested:
    return PseudonymsRequested(
        person=someone, recipients=tuple(Recipient(partner_id=p, sector=s) for p, s in partners)
    )


async def issue(
    pool: asyncpg.Pool, master: MasterKey, someone: Person, *partners: tuple[str, Sector]
) -> PseudonymsIssued:
    """Ask for pseudonyms and read the answer back from the outbox, as the registry would get it."""

    async def issue_pseudonyms(msg: Incoming[PseudonymsRequested], uow: UnitOfWork) -> None:
        await handlers.issue_pseudonyms(msg, uow, secret=SECRET)

    [envelope] = await handle(pool, master, issue_pseudonyms, incoming(request(someone, *partners)))
    [row] = [r for r in await outbox(pool) if r.event_id == envelope.id]
    issued = parse_data(envelope.type, row.payload)
    assert isinstance(issued, PseudonymsIssued)
    return issued


@dataclass(frozen=True)
class OutboxRow:
    topic: str
    key: str
    type: str
    event_id: str
    business_process_id: str
    payload: bytes

    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.payload)
        return parsed


async def outbox(pool: asyncpg.Pool, topic: str | None = None) -> list[OutboxRow]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT topic, aggregateid, type, headers, payload FROM outbox ORDER BY seq")
    found = []
    for row in rows:
        headers = dict(json.loads(row["headers"]))
        found.append(
            OutboxRow(
                row["topic"],
                row["aggregateid"],
                row["type"],
                headers["ce_id"],
                headers["ce_businessprocessid"],
                row["payload"],
            )
        )
    return [r for r in found if topic is None or r.topic == topic]


async def issued_before(pool: asyncpg.Pool, person_id: uuid.UUID, sector: str, pseudonym: str) -> None:
    """A pseudonym issued earlier, stored as the adapter's ``Pseudonyms.record`` stores one."""
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO issued_pseudonyms (person_id, sector, pseudonym, key_version) "
            "VALUES ($1, $2, $3, 1)",
            person_id,
            sector,
            pseudonym,
        )
