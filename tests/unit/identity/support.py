"""identity's handlers and announcer on the in-memory stores: no database, no broker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from contracts import (
    Contract,
    Envelope,
    Jurisdiction,
    LocalPersonId,
    Person,
    PseudonymsIssued,
    PseudonymsRequested,
    Recipient,
    Sector,
    Sex,
    ahvn13_check_digit,
)
from hub.runtime.messages import Incoming, RecordingEmitter
from services.identity import handlers
from services.identity.adapters.memory import MemoryStore, MemoryUnitOfWork
from services.identity.domain import Partner
from services.identity.ports import UnitOfWork

SECRET = bytes(range(32))
IDENTITY = "urn:ch:lu:hub:service:identity"
REGISTRY = "urn:ch:lu:hub:service:registry"
CLI = "urn:ch:lu:hub:admin:cli"
PORTAL = "CH/CAN/LU/eportal"
KRIENS_OFFICE = "CH/MUN/1059/einwohnerdienste"
LUCERNE_OFFICE = "CH/MUN/1061/einwohnerdienste"
TAX_OFFICE = "CH/CAN/LU/steuerverwaltung"
OPS = "CH/CAN/LU/ops"
TAX = (TAX_OFFICE, Sector.TAX)
KRIENS = (KRIENS_OFFICE, Sector.RESIDENT_REGISTRATION)
LUCERNE = (LUCERNE_OFFICE, Sector.RESIDENT_REGISTRATION)
LU = Jurisdiction(level="canton", canton="LU")

# The register as the migrations seed it, as far as these tests need it (all announced).
PARTNERS = (
    Partner(PORTAL, "eUmzug portal", "resident-registration", ("portal",), None, None, "active", True, LU),
    Partner(
        KRIENS_OFFICE,
        "Gemeinde Kriens, Einwohnerdienste",
        "resident-registration",
        ("municipality",),
        None,
        "CH.LU.1059",
        "active",
        True,
        Jurisdiction(level="municipality", bfs_number=1059, canton="LU"),
    ),
    Partner(
        LUCERNE_OFFICE,
        "Stadt Luzern, Einwohnerdienste",
        "resident-registration",
        ("municipality",),
        None,
        "CH.LU.1061",
        "active",
        True,
        Jurisdiction(level="municipality", bfs_number=1061, canton="LU"),
    ),
    Partner(TAX_OFFICE, "Dienststelle Steuern", "tax", ("tax-office",), None, None, "active", True, LU),
    Partner(OPS, "Hub operations", "statistics", ("operations",), None, None, "active", True, LU),
)

Handler = Callable[[Incoming[Any], UnitOfWork], Awaitable[None]]


def seeded_store() -> MemoryStore:
    store = MemoryStore()
    for partner in PARTNERS:
        store.put_partner(partner)
    return store


def vn(serial: int) -> str:
    first12 = f"7569{serial:08d}"
    return first12 + str(ahvn13_check_digit(first12))


def person(
    serial: int = 1,
    *,
    local_id: LocalPersonId | None = None,
    official_name: str = "Muster",
    first_name: str = "Anna",
    date_of_birth: dt.date = dt.date(1990, 4, 17),
) -> Person:
    return Person(
        vn=vn(serial),
        local_person_id=local_id,
        official_name=official_name,
        first_name=first_name,
        sex=Sex.FEMALE,
        date_of_birth=date_of_birth,
    )


def incoming(data: Contract, *, source: str = REGISTRY, case_id: str = "eumzug-1") -> Incoming[Any]:
    envelope = Envelope.new(data, source=source, business_process_id=case_id)
    return Incoming(envelope=envelope, data=data, topic="t", partition=0, offset=0, trace_id="0" * 32)


async def handle(store: MemoryStore, handler: Handler, msg: Incoming[Any]) -> RecordingEmitter:
    """The handler in one unit of work on ``store``; returns what it emitted."""
    emitter = RecordingEmitter(source=IDENTITY)
    await handler(msg, MemoryUnitOfWork(store, emitter))
    return emitter


def request(someone: Person, *partners: tuple[str, Sector], citizen: bool = False) -> PseudonymsRequested:
    return PseudonymsRequested(
        person=someone,
        recipients=tuple(Recipient(partner_id=p, sector=s) for p, s in partners),
        citizen_pseudonym=citizen,
    )


async def answer(store: MemoryStore, msg: Incoming[PseudonymsRequested]) -> RecordingEmitter:
    """``issue_pseudonyms`` for ``msg`` in one unit of work; what it emitted."""

    async def issue_pseudonyms(msg: Incoming[PseudonymsRequested], uow: UnitOfWork) -> None:
        await handlers.issue_pseudonyms(msg, uow, secret=SECRET)

    return await handle(store, issue_pseudonyms, msg)


async def issue(
    store: MemoryStore,
    someone: Person,
    *partners: tuple[str, Sector],
    citizen: bool = False,
    case_id: str = "eumzug-1",
) -> PseudonymsIssued:
    """Ask for pseudonyms as the registry does; the one answer identity emitted."""
    emitted = await answer(store, incoming(request(someone, *partners, citizen=citizen), case_id=case_id))
    [issued] = emitted.of_type(PseudonymsIssued)
    return issued
