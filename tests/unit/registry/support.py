"""A registry in memory for handler tests: partners, catalogue and subscriptions of a small
canton, events as partners and services send them, and a unit of work per event.

Every handler runs as the runtime runs it, with its unit of work (``MemoryRegistry``) and a
``RecordingEmitter``; a handler that raises leaves the state as it was (a rolled-back
transaction). No database, no broker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from contracts import (
    EMMEN,
    KRIENS,
    LUCERNE,
    Contract,
    Envelope,
    IssuedPseudonym,
    Jurisdiction,
    Municipality,
    PseudonymsIssued,
    Sector,
)
from hub.local.demo import demo_person, move_report
from hub.runtime.messages import Emitted, Incoming, RecordingEmitter
from hub.runtime.topics import delivery_topic
from hub.security.signing import SigningKey
from services.registry.adapters.memory import MemoryRegistry, MemoryUnitOfWork
from services.registry.case_domain import Case
from services.registry.domain import load_processes
from services.registry.model import CatalogEntry, Partner, PartnerKey, RecordedStep, SubscriptionRecord
from services.registry.partner_keys import IngressPolicy
from services.registry.ports import UnitOfWork
from services.registry.subscriptions_domain import ALL_CASES
from tests.fixtures.signing import craft

REGISTRY_SOURCE = "urn:ch:lu:hub:service:registry"
IDENTITY_SOURCE = "urn:ch:lu:hub:service:identity"
MOVE = "ch.lu.hub.relocation.move-reported.v1"
DEPARTED = "ch.lu.hub.relocation.departure-confirmed.v1"
ARRIVED = "ch.lu.hub.relocation.arrival-registered.v1"
TAXED = "ch.lu.hub.relocation.tax-record-updated.v1"
REJECTED = "ch.lu.hub.case.rejected.v1"
ACTION = "ch.lu.hub.case.action-required.v1"
COMPLETED = "ch.lu.hub.case.completed.v1"
ESCALATED = "ch.lu.hub.case.escalated.v1"
PARTY_MISSING = "ch.lu.hub.case.party-missing.v1"
CONSULTATION = "ch.lu.hub.building-permit.consultation-requested.v1"
OPS_EMAIL = "ops@hub.example"
PROCESSES = load_processes()
# Signatures are their own tests (test_registry_signed_events.py): most events here are unsigned.
UNSIGNED = IngressPolicy(require_signatures=False, max_age_s=300, max_future_skew_s=30)
SIGNED = IngressPolicy(require_signatures=True, max_age_s=300, max_future_skew_s=30)


def _partner(partner_id: str, name: str, sector: str, role: str, jurisdiction: Jurisdiction) -> Partner:
    return Partner(partner_id, name, sector, (role,), delivery_topic(partner_id), "active", jurisdiction)


def _at(place: Municipality) -> Jurisdiction:
    return Jurisdiction(level="municipality", bfs_number=place.bfs_number, canton=place.canton)


LU = Jurisdiction(level="canton", canton="LU")
PORTAL = _partner("CH/CAN/LU/eportal", "eUmzug portal", "resident-registration", "portal", LU)
KRIENS_OFFICE = _partner(
    "CH/MUN/1059/einwohnerdienste", "Kriens", "resident-registration", "municipality", _at(KRIENS)
)
LUCERNE_OFFICE = _partner(
    "CH/MUN/1061/einwohnerdienste", "Luzern", "resident-registration", "municipality", _at(LUCERNE)
)
EMMEN_OFFICE = _partner(
    "CH/MUN/1024/einwohnerdienste", "Emmen", "resident-registration", "municipality", _at(EMMEN)
)
TAX_OFFICE = _partner("CH/CAN/LU/steuerverwaltung", "Steuern Luzern", "tax", "tax-office", LU)
OPERATIONS = _partner("CH/CAN/LU/ops", "Hub operations", "statistics", "operations", LU)
BUILDING = _partner(
    "CH/MUN/1061/baudirektion", "Baudirektion", "building", "building-authority", _at(LUCERNE)
)
PARTNERS = (PORTAL, KRIENS_OFFICE, LUCERNE_OFFICE, EMMEN_OFFICE, TAX_OFFICE, OPERATIONS, BUILDING)
CATALOGUE = (
    CatalogEntry(MOVE, ("portal",), "secret"),
    CatalogEntry(DEPARTED, ("municipality",), "internal"),
    CatalogEntry(ARRIVED, ("municipality",), "internal"),
    CatalogEntry(TAXED, ("tax-office",), "internal"),
    CatalogEntry(REJECTED, ("municipality", "tax-office", "building-authority"), "confidential"),
    CatalogEntry(ACTION, ("municipality", "tax-office", "building-authority"), "confidential"),
    CatalogEntry(CONSULTATION, ("building-authority",), "confidential"),
    CatalogEntry(COMPLETED, (), "internal"),
)


def subscribe(
    partner: Partner, event_type: str, fields: tuple[str, ...], **changes: Any
) -> SubscriptionRecord:
    record = SubscriptionRecord(
        partner_id=partner.partner_id,
        event_type=event_type,
        case_type="relocation",
        purpose=f"{partner.name} reads {event_type.split('.')[-2]}",
        legal_basis="RHG Art. 11",
        legal_basis_url=None,
        fields=fields,
        retention_days=365,
        status="approved",
    )
    return replace(record, **changes)


SUBSCRIPTIONS = (
    subscribe(KRIENS_OFFICE, MOVE, ("person.official_name", "departure", "move_date")),
    subscribe(LUCERNE_OFFICE, MOVE, ("person.official_name", "person.first_name", "arrival", "move_date")),
    subscribe(EMMEN_OFFICE, MOVE, ("person.official_name", "departure", "move_date")),
    subscribe(TAX_OFFICE, MOVE, ("person.first_name", "move_date")),
    *(
        subscribe(p, COMPLETED, ("case_type", "milestones"))
        for p in (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
    ),
    *(subscribe(p, REJECTED, ("rejected_by", "reason")) for p in (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)),
    subscribe(KRIENS_OFFICE, DEPARTED, ("municipality", "confirmed_on")),
    subscribe(LUCERNE_OFFICE, DEPARTED, ("municipality", "confirmed_on")),
    subscribe(OPERATIONS, ESCALATED, ("case_type", "missing_milestones"), case_type=None, scope=ALL_CASES),
    subscribe(OPERATIONS, PARTY_MISSING, ("case_type", "slot", "reason"), case_type=None, scope=ALL_CASES),
)


def registry(
    *, partners: tuple[Partner, ...] = PARTNERS, clock: Callable[[], dt.datetime] | None = None
) -> MemoryRegistry:
    """The canton's partners, catalogue and subscriptions, in memory."""
    memory = MemoryRegistry() if clock is None else MemoryRegistry(clock=clock)
    state = memory.state
    state.partners.update({p.partner_id: p for p in partners})
    state.catalogue.update({entry.event_type: entry for entry in CATALOGUE})
    for n, record in enumerate(SUBSCRIPTIONS, start=1):
        if record.partner_id in state.partners:
            state.subscriptions[
                (record.partner_id, record.event_type, record.case_type or "", record.slot or "")
            ] = (
                n,
                record,
            )
    state.last_id = len(SUBSCRIPTIONS)
    return memory


def incoming(
    data: Contract,
    *,
    case_id: str,
    partner: Partner | None = None,
    source: str | None = None,
    key: SigningKey | None = None,
    reference_id: str | None = None,
    time: dt.datetime | None = None,
) -> Incoming[Any]:
    """``data`` as a handler receives it: from ``partner`` (signed with ``key``, if given) or a service."""
    if partner is not None:
        crafted = craft(
            data,
            partner_id=partner.partner_id,
            case_id=case_id,
            key=key,
            time=time,
            reference_id=reference_id,
        )
        envelope, headers, value = crafted.envelope, crafted.headers, crafted.value
    else:
        envelope = Envelope.new(
            data, source=source or IDENTITY_SOURCE, business_process_id=case_id, reference_id=reference_id
        )
        headers, value = tuple(envelope.to_headers()), b""
    return Incoming(
        envelope=envelope,
        data=data,
        topic="test",
        partition=0,
        offset=0,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        value=value,
        key=case_id.encode(),
        headers=tuple(headers),
    )


Handler = Callable[[Incoming[Any], UnitOfWork], Awaitable[None]]


@dataclass
class Run:
    """What one handler call emitted, in order."""

    emitted: list[Emitted] = field(default_factory=list)

    def on(self, topic: str) -> list[Emitted]:
        return [e for e in self.emitted if e.topic == topic]

    def types(self) -> list[tuple[str, str]]:
        """(topic, event type) of every emitted event, in order; a delivery by what it delivers."""
        return [(e.topic, _delivered(e)) for e in self.emitted]


def _delivered(emitted: Emitted) -> str:
    data = emitted.data.model_dump(mode="json")
    return str(data.get("event_type_delivered", emitted.envelope.type))


async def handle(memory: MemoryRegistry, handler: Handler, msg: Incoming[Any]) -> Run:
    """``handler`` on ``msg`` in a unit of work of its own, as the runtime calls it."""
    emitter = RecordingEmitter(source=REGISTRY_SOURCE)

    async def work(uow: UnitOfWork) -> None:
        await handler(msg, uow)

    await memory.transactional(emitter)(work)
    return Run(list(emitter.emitted))


def uow_of(memory: MemoryRegistry) -> MemoryUnitOfWork:
    return memory.unit_of_work(RecordingEmitter(source=REGISTRY_SOURCE))


async def case_of(memory: MemoryRegistry, case_id: str) -> Case:
    case = await uow_of(memory).cases.get(case_id)
    assert case is not None
    return case


async def timeline_of(memory: MemoryRegistry, case_id: str) -> list[RecordedStep]:
    return await uow_of(memory).timeline.of_case(case_id)


def person(serial: int = 1) -> Any:
    return demo_person(serial)


def moved(serial: int = 1, *, departure: Municipality = KRIENS, arrival: Municipality = LUCERNE) -> Any:
    return move_report(demo_person(serial), departure=departure, arrival=arrival)


def issued(*partners: Partner, citizen_id: str | None = "citizen-services:c1") -> PseudonymsIssued:
    return PseudonymsIssued(
        match="new",
        pseudonyms=tuple(
            IssuedPseudonym(partner_id=p.partner_id, sector=Sector(p.sector), pseudonym=f"{p.sector}:{n}")
            for n, p in enumerate(partners, start=1)
        ),
        citizen_id=citizen_id,
    )


def mirrored_key(partner: Partner, key: SigningKey, **changes: Any) -> PartnerKey:
    valid_from = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return replace(PartnerKey(key.key_id, partner.partner_id, key.public.base64, valid_from), **changes)
