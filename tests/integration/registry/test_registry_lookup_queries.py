"""What the cache saves: the SQL statements the registry's handlers run per event, on real
PostgreSQL, through the routes its composition root builds, with the cache off (a TTL of 0)
and on. Counted in the handler's unit of work: the runtime's own inbox claim and commit,
the same either way, are not.

With the cache on and warm, an event reads no partner, key, subscription or catalogue row:
what is left is the case itself, its timeline, the vault, the outbox and the audit chain.
``-s`` prints the figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import KRIENS, LUCERNE, DepartureConfirmed, Envelope, IssuedPseudonym, PseudonymsIssued, Sector
from contracts.catalog import serialize_data
from hub.local.demo import KRIENS_OFFICE, PORTAL, demo_person, move_report, new_case_id
from hub.runtime import topics
from hub.runtime.consumer import MessageProcessor, Outcome, RetryPolicy, Route
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.messages import Emitter
from hub.runtime.service import ServiceContext
from hub.runtime.settings import HubSettings
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from services.registry import bootstrap
from services.registry.adapters.postgres import PostgresRegistry, PostgresUnitOfWork
from services.registry.lookups import LookupCache
from tests.fixtures.registry import migrated_registry_pool, mirror_partner_key
from tests.fixtures.signing import Crafted, craft
from tests.integration.audit.conftest import KEY

pytestmark = pytest.mark.asyncio

IDENTITY = "urn:ch:lu:hub:service:identity"
REGISTRY = "urn:ch:lu:hub:service:registry"
LOOKUP_TABLES = re.compile(r"\b(partners|partner_keys|subscriptions|catalog)\b")
TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


class CountingRegistry:
    """The routes' unit-of-work factory, logging every statement run on the record's connection
    from the moment its unit of work is built until ``take``."""

    def __init__(self, registry: PostgresRegistry) -> None:
        self.registry = registry
        self.statements: list[str] = []
        self._counting = False

    def __call__(self, conn: asyncpg.Connection, emitter: Emitter) -> PostgresUnitOfWork:
        conn.add_query_logger(self._log)  # once per connection: the loggers are a set
        self._counting = True
        return self.registry(conn, emitter)

    def _log(self, record: Any) -> None:
        if self._counting and not TRANSACTION_CONTROL.match(record.query):
            self.statements.append(record.query)

    def take(self) -> list[str]:
        """The statements logged since the last unit of work was built."""
        self._counting = False
        taken, self.statements = self.statements, []
        return taken


@dataclasses.dataclass
class Registry:
    pool: asyncpg.Pool
    routes: dict[str, Route]
    counting: CountingRegistry
    keys: dict[str, SigningKey]
    offset: int = 0

    async def process(self, topic: str, crafted: Crafted) -> Outcome:
        self.offset += 1
        processor = MessageProcessor(
            self.pool,
            self.routes[topic],
            DeadLetterWriter(self.pool),
            source=REGISTRY,
            retry=RetryPolicy(0.01, 0.01),
        )
        return await processor.process(
            crafted.record(self.offset, topic=None if topic == topics.INGRESS else topic)
        )

    async def from_partner(self, partner: str, data: Any, case_id: str) -> list[str]:
        crafted = craft(data, partner_id=partner, case_id=case_id, key=self.keys[partner])
        assert await self.process(topics.INGRESS, crafted) is Outcome.PROCESSED
        return self.counting.take()

    async def from_identity(self, data: Any, case_id: str, reference_id: str) -> list[str]:
        envelope = Envelope.new(data, source=IDENTITY, business_process_id=case_id, reference_id=reference_id)
        crafted = Crafted(envelope, tuple(envelope.to_headers()), serialize_data(data))
        assert await self.process(topics.IDENTITY_RESULTS, crafted) is Outcome.PROCESSED
        return self.counting.take()

    async def pseudonyms_asked(self, case_id: str) -> tuple[str, PseudonymsIssued]:
        async with self.pool.acquire() as conn:
            [request] = await conn.fetch(
                "SELECT id, payload FROM outbox WHERE topic = $1 AND aggregateid = $2",
                topics.IDENTITY_REQUESTS,
                case_id,
            )
        asked = json.loads(bytes(request["payload"]))
        issued = PseudonymsIssued(
            match="new",
            pseudonyms=tuple(
                IssuedPseudonym(partner_id=r["partner_id"], sector=Sector(r["sector"]), pseudonym=f"p{n}")
                for n, r in enumerate(asked["recipients"])
            ),
            citizen_id=f"citizen-services:{case_id}",
        )
        return str(request["id"]), issued


@dataclasses.dataclass(frozen=True)
class Database:
    """The registry's migrated, seeded schema, with a mirrored key for each sender, and what its
    composition root is built with."""

    pool: asyncpg.Pool
    context: ServiceContext
    keys: dict[str, SigningKey]

    def registry(self, ttl_s: float) -> Registry:
        """The routes as the runtime builds them, with a cache of ``ttl_s``, counting statements."""
        built = bootstrap.routes(self.context, LookupCache(ttl_s=ttl_s))
        registry = built[0].unit_of_work
        assert isinstance(registry, PostgresRegistry)
        counting = CountingRegistry(registry)
        routes = {route.topic: dataclasses.replace(route, unit_of_work=counting) for route in built}
        return Registry(self.pool, routes, counting, self.keys)


@pytest_asyncio.fixture
async def database(
    hub_settings: HubSettings, vault_master_key: MasterKey, tmp_path: Path
) -> AsyncIterator[Database]:
    pool = await migrated_registry_pool(hub_settings.database_dsn(), size=2)
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "audit.key").write_text(KEY.secret.hex())
    settings = hub_settings.model_copy(update={"state_dir": tmp_path, "audit_key_file": None})
    keys = {
        p: await mirror_partner_key(pool, p, f"queries-{n}") for n, p in enumerate((PORTAL, KRIENS_OFFICE))
    }
    yield Database(pool, ServiceContext("registry", settings, pool, vault_master_key), keys)
    await pool.close()


async def one_case(registry: Registry, serial: int) -> dict[str, list[str]]:
    """A move from Kriens to Lucerne: the portal's report, identity's answer (the deliveries)
    and Kriens's confirmation of the departure; the statements of each."""
    case_id = new_case_id()
    opened = await registry.from_partner(
        PORTAL, move_report(demo_person(serial), departure=KRIENS, arrival=LUCERNE), case_id
    )
    request_id, issued = await registry.pseudonyms_asked(case_id)
    delivered = await registry.from_identity(issued, case_id, request_id)
    confirmed = await registry.from_partner(
        KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=dt.date.today()), case_id
    )
    return {"opening event": opened, "deliveries": delivered, "milestone event": confirmed}


def lookups(statements: list[str]) -> list[str]:
    return [s for s in statements if LOOKUP_TABLES.search(s)]


async def test_a_warm_cache_leaves_no_lookup_in_the_sql_of_an_event(database: Database) -> None:
    uncached, cached = database.registry(ttl_s=0), database.registry(ttl_s=60)
    for registry in (uncached, cached):
        await one_case(registry, serial=1)  # the cache warms up (nothing to warm with a TTL of 0)
    before, after = await one_case(uncached, serial=2), await one_case(cached, serial=3)
    for step in before:
        without, with_cache = before[step], after[step]
        print(
            f"{step}: {len(without)} statements without the cache ({len(lookups(without))} lookups), "
            f"{len(with_cache)} with it ({len(lookups(with_cache))} lookups)"
        )
    assert {step: lookups(after[step]) for step in after} == {step: [] for step in after}
    assert all(lookups(before[step]) for step in before)
    for step in before:
        assert len(after[step]) == len(before[step]) - len(lookups(before[step]))
