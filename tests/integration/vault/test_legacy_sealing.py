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
from hub.vault.crypto import Erased
from services.identity import repository as persons
from services.identity import sealing as identity_sealing
from services.identity.erase import erase_person
from services.registry import repository as registry
from services.registry import sealing as registry_sealing
from services.registry.domain import load_processes
from tests.integration.vault.scan import hits, readable_rows
from tests.integration.vault.support import ANNA, REGISTRY_SOURCE, Pools

pytestmark = pytest.mark.asyncio
CITIZEN = "citizen-services:legacy0anna"


async def test_legacy_rows_are_read_sealed_and_erased_with_their_person(pools: Pools) -> None:
    case_id, person_id = await _legacy_rows(pools)
    details = ANNA.model_dump(mode="json")
    details["person"].pop("vn")
    assert (await _case(pools, case_id)).details == details  # readable before sealing

    async with pools.registry.acquire() as conn, conn.transaction():
        # The case and its pending delivery.
        assert await registry_sealing.seal_batch(load_processes())(conn) == 2
    async with pools.identity.acquire() as conn, conn.transaction():
        assert await identity_sealing.seal_batch(conn) == 1
        assert await identity_sealing.seal_batch(conn) == 0  # done

    async with pools.registry.acquire() as conn:
        assert (
            hits(await readable_rows(conn), (ANNA.person.first_name, ANNA.contact.email, ANNA.person.vn))
            == []
        )
    case = await _case(pools, case_id)
    assert case.details == details
    async with pools.identity.acquire() as conn:
        tx = Transaction(conn, source="test")
        assert await persons.person_by_vn(tx, ANNA.person.vn) == person_id
        assert await persons.local_ids_of(tx, person_id) == [ANNA.person.local_person_id]

    async with pools.identity.acquire() as conn, conn.transaction():
        erasure = await erase_person(conn, citizen_id=CITIZEN)
    assert erasure.persons == 1
    # The person's key (identity) and the case's (registry): one ring via the citizen id.
    assert erasure.keys == 2
    assert (await _case(pools, case_id)).erased
    async with pools.identity.acquire() as conn:
        assert isinstance(await persons.person_record(Transaction(conn, source="test"), person_id), Erased)


async def _case(pools: Pools, case_id: str) -> registry.Case:
    async with pools.registry.acquire() as conn:
        case = await registry.load_case(Transaction(conn, source=REGISTRY_SOURCE), case_id)
    assert case is not None
    return case


async def _legacy_rows(pools: Pools) -> tuple[str, uuid.UUID]:
    """As written before registry 0008 and identity 0004."""
    case_id, person_id, person = f"eumzug-{uuid.uuid4()}", uuid.uuid4(), ANNA.person
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
    return case_id, person_id
