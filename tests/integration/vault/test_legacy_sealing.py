"""Rows stored before encryption at rest: readable as they are, sealed at start, then erasable.

The rows are written as the services wrote them before their sealing migrations (plain
columns, nothing sealed); each service's sealer then seals them. The citizen id ties the
services' keys into one ring, so erasing the person reaches all of them.
"""

from __future__ import annotations

import json
import uuid

import pytest

from hub.runtime.outbox import Transaction
from services.identity.erase import erase_person
from services.notifications import citizens
from services.notifications import sealing as notifications_sealing
from services.registry import repository as registry
from services.registry import sealing as registry_sealing
from services.registry.domain import load_processes
from tests.integration.identity import support as identity
from tests.integration.vault.scan import hits, readable_rows
from tests.integration.vault.support import ANNA, REGISTRY_SOURCE, Pools

pytestmark = pytest.mark.asyncio
CITIZEN = "citizen-services:legacy0anna"


async def test_legacy_rows_are_read_sealed_and_erased_with_their_person(pools: Pools) -> None:
    case_id = await _legacy_rows(pools)
    details = ANNA.model_dump(mode="json")
    details["person"].pop("vn")
    assert (await _case(pools, case_id)).details == details  # readable before sealing

    async with pools.registry.acquire() as conn, conn.transaction():
        # The case and its pending delivery.
        assert await registry_sealing.seal_batch(load_processes())(conn) == 2
    async with pools.notifications.acquire() as conn, conn.transaction():
        # The email, its inbox copy and the inbox message.
        assert await notifications_sealing.seal_batch(conn) == 3

    async with pools.registry.acquire() as conn:
        assert (
            hits(await readable_rows(conn), (ANNA.person.first_name, ANNA.contact.email, ANNA.person.vn))
            == []
        )
    case = await _case(pools, case_id)
    assert case.details == details
    async with pools.notifications.acquire() as conn:
        [message] = await citizens.inbox_of(conn, CITIZEN)
        assert message.body == "Guten Tag Annelies Zwygart"

    async with pools.identity.acquire() as conn, conn.transaction():
        erasure = await erase_person(conn, identity.master_key(), citizen_id=CITIZEN)
    # The case's key (registry, notifications), reached through the citizen id.
    assert (erasure.persons, erasure.keys) == (0, 1)
    assert (await _case(pools, case_id)).erased
    async with pools.notifications.acquire() as conn:
        [message] = await citizens.inbox_of(conn, CITIZEN)
        assert message.erased


async def _case(pools: Pools, case_id: str) -> registry.Case:
    async with pools.registry.acquire() as conn:
        case = await registry.load_case(Transaction(conn, source=REGISTRY_SOURCE), case_id)
    assert case is not None
    return case


async def _legacy_rows(pools: Pools) -> str:
    """As written before registry 0008 and notifications 0003."""
    case_id = f"eumzug-{uuid.uuid4()}"
    details = ANNA.model_dump(mode="json")
    details["person"].pop("vn")
    async with pools.registry.acquire() as conn:
        await conn.execute(
            "INSERT INTO cases (case_id, case_type, status, trace_id, reported_event_id, details, "
            "citizen_id) VALUES ($1, 'relocation', 'in-progress', $2, 'e1', $3::jsonb, $4)",
            case_id,
            "0" * 32,
            json.dumps(details),
            CITIZEN,
        )
        await conn.execute(
            "INSERT INTO pending_deliveries (request_id, case_id, event_id, event_type, data) "
            "VALUES ('r1', $1, 'e1', 'ch.lu.hub.relocation.move-reported.v1', $2::jsonb)",
            case_id,
            json.dumps(details),
        )
    async with pools.notifications.acquire() as conn:
        for notification_id, channel, recipient in (
            ("n1", "email", ANNA.contact.email),
            ("n1:inbox", "inbox", CITIZEN),
        ):
            await conn.execute(
                "INSERT INTO notifications (notification_id, case_id, channel, recipient, language, "
                "template, template_version, subject, body, status, citizen_id) "
                "VALUES ($1, $2, $3, $4, 'de', 'relocation.received', 1, 'Umzug', $5, 'delivered', $6)",
                notification_id,
                case_id,
                channel,
                recipient,
                "Guten Tag Annelies Zwygart",
                CITIZEN,
            )
        await conn.execute(
            "INSERT INTO inbox_messages (notification_id, citizen_id, case_id, template, language, subject, "
            "body) VALUES ('n1:inbox', $1, $2, 'relocation.received', 'de', 'Umzug', $3)",
            CITIZEN,
            case_id,
            "Guten Tag Annelies Zwygart",
        )
    return case_id
