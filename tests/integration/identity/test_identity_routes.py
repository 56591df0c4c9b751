"""Identity's subscriptions as the consumer runs them: records in, handler or skip or dead letter."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from contracts import Contract, Envelope, Jurisdiction, Sector, SetSubscription
from contracts.admin import RegisterPartner
from contracts.identity import PartnerRegistered
from hub.runtime import topics
from hub.runtime.consumer import MessageProcessor, Outcome, RetryPolicy, Route
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.service import ServiceContext
from hub.runtime.settings import HubSettings
from hub.security.operator_keys import operator_signing_key
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from services.identity import bootstrap
from services.identity.announcer import PartnerAnnouncer
from tests.fixtures.records import consumer_record
from tests.integration.identity.support import (
    CLI,
    IDENTITY,
    KRIENS_OFFICE,
    REGISTRY,
    TAX_OFFICE,
    outbox,
    person,
    request,
)

pytestmark = pytest.mark.asyncio
NEW_PARTNER = "CH/MUN/1062/einwohnerdienste"


def _record(
    data: Contract, source: str, offset: int, key: SigningKey | None = None
) -> ConsumerRecord[bytes, bytes]:
    envelope = Envelope.new(data, source=source, business_process_id="admin")
    value = data.model_dump_json().encode()
    headers = envelope.to_headers() if key is None else key.sign_headers(envelope.to_headers(), value)
    return consumer_record(value, headers, topic=topics.ADMIN, offset=offset, key=b"admin")


def _admin_processor(pool: asyncpg.Pool, settings: HubSettings, master: MasterKey) -> MessageProcessor:
    routes = bootstrap.routes(ServiceContext(bootstrap.NAME, settings, pool, master))
    [route] = [r for r in routes if r.topic == topics.ADMIN]
    assert isinstance(route, Route)
    assert route.group_id == "hub.identity.admin"
    return MessageProcessor(
        pool, route, DeadLetterWriter(pool), source=IDENTITY, retry=RetryPolicy(0.01, 0.01)
    )


async def test_the_admin_route_handles_partner_commands_and_skips_the_registrys(
    pool: asyncpg.Pool, hub_settings: HubSettings, vault_master_key: MasterKey
) -> None:
    processor = _admin_processor(pool, hub_settings, vault_master_key)
    subscription = SetSubscription(
        partner_id=KRIENS_OFFICE,
        subscribed_event_type="ch.lu.hub.case.completed.v1",
        purpose="close the file",
        legal_basis="RHG Art. 12",
        retention_days=30,
    )
    register = RegisterPartner(
        partner_id=NEW_PARTNER,
        name="Gemeinde Horw",
        sector=Sector.RESIDENT_REGISTRATION,
        roles=("municipality",),
        jurisdiction=Jurisdiction(level="municipality", bfs_number=1058, canton="LU"),
    )
    assert await processor.process(_record(subscription, CLI, 1)) is Outcome.SKIPPED
    # The CLI signs with the local operator key, which the service trusts by default.
    operator = operator_signing_key(hub_settings)
    assert await processor.process(_record(register, CLI, 2, operator)) is Outcome.PROCESSED
    [event] = await outbox(pool, topics.IDENTITY_PARTNERS)
    assert (event.type, event.key) == (PartnerRegistered.event_type, NEW_PARTNER)


async def test_a_partner_command_from_a_sender_without_the_right_is_dead_lettered(
    pool: asyncpg.Pool, hub_settings: HubSettings, vault_master_key: MasterKey
) -> None:
    processor = _admin_processor(pool, hub_settings, vault_master_key)
    register = RegisterPartner(
        partner_id=NEW_PARTNER,
        name="Gemeinde Horw",
        sector=Sector.RESIDENT_REGISTRATION,
        roles=("portal",),
        jurisdiction=Jurisdiction(level="canton", canton="LU"),
    )
    municipality = f"urn:ch:lu:hub:partner:{KRIENS_OFFICE}"
    assert await processor.process(_record(register, municipality, 3)) is Outcome.DEAD_LETTERED
    async with pool.acquire() as conn:
        error_class = await conn.fetchval("SELECT error_class FROM dead_letters")
        assert await conn.fetchval("SELECT count(*) FROM partners WHERE partner_id = $1", NEW_PARTNER) == 0
    assert error_class == "NotAuthorized"


async def test_identity_declares_the_partner_topic_and_its_announcer(
    pool: asyncpg.Pool, hub_settings: HubSettings, vault_master_key: MasterKey
) -> None:
    definition = bootstrap.definition()
    assert topics.IDENTITY_PARTNERS in definition.topics
    workers = definition.workers(ServiceContext(bootstrap.NAME, hub_settings, pool, vault_master_key))
    # The announcer alone: there are no persons stored before encryption at rest to seal.
    [announcer] = workers
    assert isinstance(getattr(announcer, "__self__", None), PartnerAnnouncer)


async def test_the_requests_route_answers_a_batch_read_ahead_as_one_by_one(
    pool: asyncpg.Pool, hub_settings: HubSettings, vault_master_key: MasterKey
) -> None:
    routes = bootstrap.routes(ServiceContext(bootstrap.NAME, hub_settings, pool, vault_master_key))
    [route] = [r for r in routes if r.topic == topics.IDENTITY_REQUESTS]
    assert route.batch_unit_of_work is not None
    assert route.unit_of_work is not None  # a record alone still gets its unit of work
    processor = MessageProcessor(
        pool, route, DeadLetterWriter(pool), source=IDENTITY, retry=RetryPolicy(0.01, 0.01)
    )
    newcomer, known = person(71), person(72, first_name="Karl", official_name="Kunz")
    tax, kriens = (TAX_OFFICE, Sector.TAX), (KRIENS_OFFICE, Sector.RESIDENT_REGISTRATION)
    known_before = _request_record(request(known, tax), "case-0", 1)
    assert await processor.process(known_before) is Outcome.PROCESSED
    records = [
        _request_record(request(newcomer, kriens, tax), "case-1", 2),
        _request_record(request(known, kriens, tax), "case-2", 3),
        _request_record(request(newcomer, tax), "case-3", 4),
    ]
    result = await processor.attempt_batch(records, lambda _record: 1)
    assert result.outcomes == dict.fromkeys(range(3), Outcome.PROCESSED)
    answers = {row.business_process_id: row.data() for row in await outbox(pool, topics.IDENTITY_RESULTS)}
    assert [answers[case]["match"] for case in ("case-0", "case-1", "case-2", "case-3")] == [
        "new",
        "new",
        "exact-vn",
        "exact-vn",
    ]

    def pseudonym(case: str, partner_id: str) -> str:
        [found] = [p["pseudonym"] for p in answers[case]["pseudonyms"] if p["partner_id"] == partner_id]
        return str(found)

    assert pseudonym("case-1", TAX_OFFICE) == pseudonym("case-3", TAX_OFFICE)
    assert pseudonym("case-0", TAX_OFFICE) == pseudonym("case-2", TAX_OFFICE)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM persons") == 2
        assert await conn.fetchval("SELECT count(*) FROM issued_pseudonyms") == 4


def _request_record(data: Contract, case_id: str, offset: int) -> ConsumerRecord[bytes, bytes]:
    envelope = Envelope.new(data, source=REGISTRY, business_process_id=case_id)
    return consumer_record(
        data.model_dump_json().encode(),
        envelope.to_headers(),
        topic=topics.IDENTITY_REQUESTS,
        offset=offset,
        key=case_id.encode(),
    )
