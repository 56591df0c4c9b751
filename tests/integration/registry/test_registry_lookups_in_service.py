"""The registry service, running on the broker and the database with its cache warm, applies
each change from the very next event on: a subscription set routes the next case to the new
subscriber, a revoked key signs nothing more, a suspended partner is refused.

The service is started from its definition (``services.registry.bootstrap``), as ``hub up``
starts it; events arrive on Kafka as partners and identity publish them, under a topic prefix
of the test's own. Each change is awaited in the database (committed), then the next event
is published at once: no time passes for the cache's TTL to help.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import KRIENS, LUCERNE, Contract, Envelope, SetSubscription
from contracts.catalog import serialize_data
from contracts.identity import PartnerKeyRevoked, PartnerStatusChanged
from hub.local.demo import PORTAL, demo_person, move_report, new_case_id
from hub.runtime import topics
from hub.runtime.service import ServiceRuntime
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic, on_cluster
from hub.security.operator_keys import ADMIN_CLI_SOURCE, operator_signing_key
from hub.security.signing import SigningKey
from services.registry import bootstrap
from tests.fixtures.registry import migrated_registry_pool, mirror_partner_key
from tests.fixtures.signing import Crafted, craft, send

pytestmark = pytest.mark.asyncio

IDENTITY = "urn:ch:lu:hub:service:identity"
MOVE = "ch.lu.hub.relocation.move-reported.v1"
STATISTICS = "CH/CAN/LU/lustat"
WAIT_S = 30.0


@dataclass
class Service:
    settings: HubSettings
    pool: asyncpg.Pool
    first_key: SigningKey
    second_key: SigningKey
    operator: SigningKey

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix

    async def publish(self, crafted: Crafted, topic: str) -> None:
        await send(self.settings.bootstrap_servers(), [crafted], topic=on_cluster(topic, self.prefix))

    async def report_move(self, key: SigningKey, serial: int) -> tuple[str, str]:
        """The portal reports a move signed with ``key``: the case id and the event id."""
        case_id = new_case_id()
        crafted = craft(
            move_report(demo_person(serial), departure=KRIENS, arrival=LUCERNE),
            partner_id=PORTAL,
            case_id=case_id,
            key=key,
        )
        await self.publish(crafted, crafted.own_topic)
        return case_id, crafted.event_id

    async def from_identity(self, data: Contract, partner_id: str) -> None:
        envelope = Envelope.new(data, source=IDENTITY, business_process_id=f"partner:{partner_id}")
        crafted = Crafted(envelope, tuple(envelope.to_headers()), serialize_data(data))
        await self.publish(crafted, topics.IDENTITY_PARTNERS)

    async def by_operator(self, command: SetSubscription) -> None:
        envelope = Envelope.new(
            command, source=ADMIN_CLI_SOURCE, business_process_id=f"partner:{command.partner_id}"
        )
        value = serialize_data(command)
        headers = self.operator.sign_headers(envelope.to_headers(), value)
        await self.publish(Crafted(Envelope.from_headers(headers), tuple(headers), value), topics.ADMIN)

    async def value(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def until(self, what: str, check: Callable[[], Awaitable[bool]]) -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                while not await check():
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"{what}: not within {WAIT_S:.0f}s") from None

    async def opened(self, case_id: str) -> list[str]:
        """Once the case is open: the partners it asked identity pseudonyms for, its recipients."""

        async def asked() -> bool:
            return bool(await self.value("SELECT count(*) FROM outbox WHERE aggregateid = $1", case_id))

        await self.until(f"case {case_id} opened", asked)
        payload = await self.value(
            "SELECT payload FROM outbox WHERE topic = $1 AND aggregateid = $2",
            topics.IDENTITY_REQUESTS,
            case_id,
        )
        return [recipient["partner_id"] for recipient in json.loads(bytes(payload))["recipients"]]

    async def refused(self, event_id: str) -> str:
        """Once the event is dead-lettered: the class of its refusal."""

        async def dead_lettered() -> bool:
            return bool(await self.value("SELECT count(*) FROM dead_letters WHERE event_id = $1", event_id))

        await self.until(f"event {event_id} dead-lettered", dead_lettered)
        error_class: str = await self.value(
            "SELECT error_class FROM dead_letters WHERE event_id = $1", event_id
        )
        return error_class


@pytest_asyncio.fixture
async def service(hub_settings: HubSettings) -> AsyncIterator[Service]:
    settings = hub_settings.model_copy(
        update={"topic_prefix": f"t{uuid.uuid4().hex[:10]}", "kafka_topic_partitions": 1}
    )
    pool = await migrated_registry_pool(settings.database_dsn(), size=2)
    first_key = await mirror_partner_key(pool, PORTAL, "portal-live-1")
    second_key = await mirror_partner_key(pool, PORTAL, "portal-live-2")
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO partners (partner_id, name, sector, delivery_topic, roles, jurisdiction_level,"
            " canton) VALUES ($1, 'LUSTAT', 'statistics', $2, '{statistics}', 'canton', 'LU')",
            STATISTICS,
            delivery_topic(STATISTICS),
        )
    operator = operator_signing_key(settings)  # the local operator key, which the service trusts
    runtime = ServiceRuntime(bootstrap.definition(), settings)
    await runtime.start()
    try:
        yield Service(settings, pool, first_key, second_key, operator)
    finally:
        await runtime.stop()
        await pool.close()


async def test_each_change_applies_from_the_next_event_on(service: Service) -> None:
    # Warm: the portal, its key, the catalogue and the move's subscriptions are in memory now.
    first_case, _ = await service.report_move(service.first_key, serial=1)
    assert STATISTICS not in await service.opened(first_case)

    await service.by_operator(
        SetSubscription(
            partner_id=STATISTICS,
            subscribed_event_type=MOVE,
            case_type="relocation",
            purpose="migration statistics",
            legal_basis="StatG LU § 5",
            fields=("move_date",),
            retention_days=30,
            status="approved",
            scope="all-cases",
        )
    )

    async def subscribed() -> bool:
        return bool(
            await service.value("SELECT count(*) FROM subscriptions WHERE partner_id = $1", STATISTICS)
        )

    await service.until("subscription set", subscribed)
    second_case, _ = await service.report_move(service.first_key, serial=2)
    assert STATISTICS in await service.opened(second_case)

    revoked_at = dt.datetime.now(dt.UTC)
    await service.from_identity(
        PartnerKeyRevoked(partner_id=PORTAL, key_id=service.first_key.key_id, revoked_at=revoked_at), PORTAL
    )

    async def revoked() -> bool:
        return bool(
            await service.value(
                "SELECT revoked_at IS NOT NULL FROM partner_keys WHERE key_id = $1", service.first_key.key_id
            )
        )

    await service.until("key revoked", revoked)
    _, signed_with_revoked_key = await service.report_move(service.first_key, serial=3)
    assert await service.refused(signed_with_revoked_key) == "RevokedSigningKey"
    third_case, _ = await service.report_move(service.second_key, serial=4)
    assert await service.opened(third_case)  # the partner's other key still works

    await service.from_identity(PartnerStatusChanged(partner_id=PORTAL, status="suspended"), PORTAL)

    async def suspended() -> bool:
        return bool(
            await service.value("SELECT status = 'suspended' FROM partners WHERE partner_id = $1", PORTAL)
        )

    await service.until("partner suspended", suspended)
    _, from_suspended_partner = await service.report_move(service.second_key, serial=5)
    assert await service.refused(from_suspended_partner) == "NotAuthorized"
