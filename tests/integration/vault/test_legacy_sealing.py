"""Rows stored before encryption at rest: readable as they are, sealed at start, then erasable.

The rows are written as the services wrote them before their sealing migrations (plain
columns, nothing sealed); each service's sealer then seals them. The citizen id ties the
services' keys into one ring, so erasing the person reaches all of them. (The registry
has sealed everything it stores from its first row on: it has no such rows.)
"""

from __future__ import annotations

import uuid

import pytest

from hub.runtime.outbox import Transaction
from hub.vault.crypto import Erased
from services.identity import repository as persons
from services.identity import sealing as identity_sealing
from services.identity.erase import erase_person
from services.notifications import citizens
from services.notifications import sealing as notifications_sealing
from tests.integration.vault.scan import hits, readable_rows
from tests.integration.vault.support import ANNA, Pools

pytestmark = pytest.mark.asyncio
CITIZEN = "citizen-services:legacy0anna"


async def test_legacy_rows_are_read_sealed_and_erased_with_their_person(pools: Pools) -> None:
    case_id, person_id = await _legacy_rows(pools)
    async with pools.notifications.acquire() as conn, conn.transaction():
        # The email, its inbox copy and the inbox message.
        assert await notifications_sealing.seal_batch(conn) == 3
    async with pools.identity.acquire() as conn, conn.transaction():
        assert await identity_sealing.seal_batch(conn) == 1
        assert await identity_sealing.seal_batch(conn) == 0  # done

    async with pools.registry.acquire() as conn:
        assert (
            hits(await readable_rows(conn), (ANNA.person.first_name, ANNA.contact.email, ANNA.person.vn))
            == []
        )
    async with pools.identity.acquire() as conn:
        tx = Transaction(conn, source="test")
        assert await persons.person_by_vn(tx, ANNA.person.vn) == person_id
        assert await persons.local_ids_of(tx, person_id) == [ANNA.person.local_person_id]
    async with pools.notifications.acquire() as conn:
        [message] = await citizens.inbox_of(conn, CITIZEN)
        assert message.body == "Guten Tag Annelies Zwygart"

    async with pools.identity.acquire() as conn, conn.transaction():
        erasure = await erase_person(conn, citizen_id=CITIZEN)
    assert erasure.persons == 1
    # The person's key (identity) and the case's (notifications): one ring via the citizen id.
    assert erasure.keys == 2
    assert erasure.cases == (case_id,)
    async with pools.identity.acquire() as conn:
        assert isinstance(await persons.person_record(Transaction(conn, source="test"), person_id), Erased)
    async with pools.notifications.acquire() as conn:
        [message] = await citizens.inbox_of(conn, CITIZEN)
        assert message.erased


async def _legacy_rows(pools: Pools) -> tuple[str, uuid.UUID]:
    """As written before identity 0004 and notifications 0003."""
    case_id, person_id, person = f"eumzug-{uuid.uuid4()}", uuid.uuid4(), ANNA.person
    async with pools.identity.acquire() as conn:
        await conn.execute(
            "INSERT INTO persons (person_id, vn, official_name, first_name, sex, date_of_birth) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            person_id,
            person.vn,
            person.official_name,
            person.first_name,
            person.sex.value,
            person.date_of_birth,
        )
        assert person.local_person_id is not None
        await conn.execute(
            "INSERT INTO local_person_ids (category, local_id, person_id) VALUES ($1, $2, $3)",
            person.local_person_id.category,
            person.local_person_id.id,
            person_id,
        )
        await conn.execute(
            "INSERT INTO issued_pseudonyms (person_id, sector, pseudonym, key_version) "
            "VALUES ($1, 'citizen-services', $2, 1)",
            person_id,
            CITIZEN,
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
    return case_id, person_id
