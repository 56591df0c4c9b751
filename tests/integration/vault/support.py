"""Two citizens' data stored by the three services, as their handlers store it, in one database.

The services' schemas and the shared vault are migrated as each service does at start; the
three services' code is given one master key (``Pools.master``), as the services of one hub
load the same ring.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest_asyncio

from contracts import (
    KRIENS,
    LUCERNE,
    Address,
    Channel,
    Contact,
    LocalPersonId,
    MoveReported,
    Person,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
    Sector,
    Sex,
    parse_data,
)
from hub.vault.crypto import MasterKey
from services.identity import handlers as identity_handlers
from services.identity.ports import UnitOfWork
from services.notifications.channels import ChannelAdapter, EmailChannel, InboxChannel
from services.notifications.dispatcher import Dispatcher
from services.notifications.email_sender import InMemoryEmailSender
from services.registry.model import NewCase, PendingDelivery
from tests.fixtures.registry import migrated_registry_pool, registry_unit_of_work
from tests.integration.identity import support as identity
from tests.integration.notifications import conftest as notifications

REGISTRY_SOURCE = "urn:ch:lu:hub:service:registry"
TAX_OFFICE = "CH/CAN/LU/steuerverwaltung"


@dataclass(frozen=True)
class Pools:
    registry: asyncpg.Pool
    identity: asyncpg.Pool
    notifications: asyncpg.Pool
    master: MasterKey  # the vault's master key the three services' code is given


@pytest_asyncio.fixture
async def pools(database_url: str, vault_master_key: MasterKey) -> AsyncIterator[Pools]:
    opened = Pools(
        await migrated_registry_pool(database_url, size=4),
        await identity.migrated_pool(database_url),
        await notifications.migrated_pool(database_url),
        vault_master_key,
    )
    yield opened
    for pool in (opened.registry, opened.identity, opened.notifications):
        await pool.close()


@dataclass(frozen=True)
class Citizen:
    """One person's report and what the hub made of it."""

    report: MoveReported
    case_id: str
    request_id: str
    citizen_id: str = ""

    @property
    def person(self) -> Person:
        return self.report.person

    @property
    def needles(self) -> tuple[str, ...]:
        """Values that must never be readable in the database as stored."""
        person, contact = self.report.person, self.report.contact
        assert person.local_person_id is not None
        return (
            person.vn,
            person.official_name,
            person.first_name,
            person.date_of_birth.isoformat(),
            person.local_person_id.id,
            contact.email,
            self.report.new_address.street,
        )


def report(serial: int, official_name: str, first_name: str, email: str, street: str) -> MoveReported:
    return MoveReported(
        person=Person(
            vn=identity.vn(serial),
            local_person_id=LocalPersonId(category="CH.LU.1061", id=f"EWK-{serial:05d}-{first_name}"),
            official_name=official_name,
            first_name=first_name,
            sex=Sex.FEMALE,
            date_of_birth=dt.date(1980, 1, serial),
        ),
        contact=Contact(email=email),
        departure=KRIENS,
        arrival=LUCERNE,
        previous_address=Address(street="Alte Gasse", house_number="1", postal_code="6010", town="Kriens"),
        new_address=Address(street=street, house_number="7", postal_code="6004", town="Luzern"),
        move_date=dt.date(2026, 6, 1),
    )


ANNA = report(11, "Zwygart", "Annelies", "annelies.zwygart@example.ch", "Zinggentorstrasse")
BRUNO = report(12, "Bachmann", "Brunhild", "brunhild.bachmann@example.ch", "Bireggstrasse")


async def open_case(pools: Pools, moved: MoveReported) -> Citizen:
    """What the registry stores when the report arrives (``handlers.open_case``)."""
    citizen = Citizen(moved, f"eumzug-{uuid.uuid4()}", str(uuid.uuid4()))
    data = moved.model_dump(mode="json")
    vn = data["person"].pop("vn")
    async with pools.registry.acquire() as conn, conn.transaction():
        uow = registry_unit_of_work(conn, pools.master)
        assert await uow.cases.add(
            NewCase(
                case_id=citizen.case_id,
                case_type="relocation",
                trace_id="0" * 32,
                traceparent=None,
                test_delivery=False,
                reported_event_id=str(uuid.uuid4()),
                details=data,
                deadline_s=3600,
                details_type=MoveReported.event_type,
                subject_vn=vn,
            )
        )
        await uow.pending.add(
            PendingDelivery(
                citizen.request_id, citizen.case_id, str(uuid.uuid4()), MoveReported.event_type, data
            )
        )
    return citizen


async def resolve(pools: Pools, citizen: Citizen) -> Citizen:
    """Identity's answer: the person stored, the tax office's pseudonym and the citizen id."""
    request = PseudonymsRequested(
        person=citizen.person,
        recipients=(Recipient(partner_id=TAX_OFFICE, sector=Sector.TAX),),
        citizen_pseudonym=True,
    )

    async def issue(msg: Any, uow: UnitOfWork) -> None:
        await identity_handlers.issue_pseudonyms(msg, uow, secret=identity.SECRET)

    [answer] = await identity.handle(
        pools.identity, pools.master, issue, identity.incoming(request, case_id=citizen.case_id)
    )
    [row] = [r for r in await identity.outbox(pools.identity) if r.event_id == answer.id]
    issued = parse_data(answer.type, row.payload)
    assert isinstance(issued, PseudonymsIssued)
    assert issued.citizen_id is not None
    async with pools.registry.acquire() as conn, conn.transaction():
        await registry_unit_of_work(conn, pools.master).cases.set_citizen_id(
            citizen.case_id, issued.citizen_id
        )
    return Citizen(citizen.report, citizen.case_id, citizen.request_id, issued.citizen_id)


async def notify(pools: Pools, citizen: Citizen, step: str, *, send: bool) -> str:
    """A notice to the citizen (email and an inbox copy), sent now if ``send``; returns its id."""
    person = citizen.person
    notification_id = f"{citizen.case_id}:{step}"
    placeholders = notifications.PLACEHOLDERS | {
        "case_id": citizen.case_id,
        "first_name": person.first_name,
        "official_name": person.official_name,
    }
    requested = notifications.request(
        notification_id,
        recipient=citizen.report.contact.email,
        placeholders=placeholders,
        citizen_id=citizen.citizen_id,
    )
    await notifications.accept(
        pools.notifications, pools.master, notifications.incoming(requested, case_id=citizen.case_id)
    )
    if send:
        await dispatch(pools)
    return notification_id


async def dispatch(pools: Pools) -> InMemoryEmailSender:
    sender = InMemoryEmailSender()
    channels: dict[Channel, ChannelAdapter] = {
        Channel.EMAIL: EmailChannel(sender, from_address="noreply@hub.stadtluzern.ch"),
        Channel.INBOX: InboxChannel(notifications.units(pools.notifications, pools.master)),
    }
    await Dispatcher(notifications.units(pools.notifications, pools.master), channels).dispatch_due()
    return sender


async def store(pools: Pools, moved: MoveReported) -> Citizen:
    """Everything the hub keeps of one citizen: case, pending delivery, person, a sent notice."""
    citizen = await resolve(pools, await open_case(pools, moved))
    await notify(pools, citizen, "received", send=True)
    return citizen


async def published(pools: Pools) -> None:
    """As if every service's relay had published its outbox (no relay runs here): erasure
    waits for unpublished rows of the person's cases (``services/identity/erase.py``)."""
    for pool in (pools.registry, pools.identity, pools.notifications):
        async with pool.acquire() as conn:
            await conn.execute("UPDATE outbox SET published_at = now() WHERE published_at IS NULL")
