"""The relocation scenario, played by the partners against a running hub.

The cantonal portal reports a move from Kriens to Lucerne; Kriens, Lucerne and the
cantonal tax office each receive their delivery and confirm it; the hub completes the
case and tells the citizen. Partners are real Kafka clients in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Callable

import asyncpg

from contracts import (
    KRIENS,
    LUCERNE,
    Address,
    ArrivalRegistered,
    Contact,
    Contract,
    DepartureConfirmed,
    Language,
    MoveReported,
    MoveReportedDelivery,
    Person,
    Sex,
    TaxRecordUpdated,
    ahvn13_check_digit,
)
from hub.casefile import CaseView, load_case_view
from hub.errors import HubError
from hub.partner import PartnerClient
from hub.settings import HubSettings

PORTAL = "CH/CAN/LU/eportal"
KRIENS_OFFICE = "CH/MUN/1059/einwohnerdienste"
LUCERNE_OFFICE = "CH/MUN/1061/einwohnerdienste"
TAX_OFFICE = "CH/CAN/LU/steuerverwaltung"


class DemoTimeout(HubError):
    pass


def demo_person(serial: int = 1) -> Person:
    first12 = f"7569{serial:08d}"
    return Person(
        vn=first12 + str(ahvn13_check_digit(first12)),
        official_name="Muster",
        first_name="Anna",
        sex=Sex.FEMALE,
        date_of_birth=dt.date(1990, 4, 17),
    )


def move_report(person: Person, language: Language = Language.DE) -> MoveReported:
    return MoveReported(
        person=person,
        contact=Contact(email="anna.muster@example.ch", language=language),
        departure=KRIENS,
        arrival=LUCERNE,
        previous_address=Address(
            street="Schachenstrasse", house_number="12", postal_code="6010", town="Kriens"
        ),
        new_address=Address(street="Hertensteinstrasse", house_number="3", postal_code="6004", town="Luzern"),
        move_date=dt.date.today(),
    )


def new_case_id() -> str:
    # eUmzugCH prefixes the business process id per process.
    return f"eumzug-{uuid.uuid4()}"


def confirmation_for(partner_id: str) -> Contract:
    today = dt.date.today()
    if partner_id == KRIENS_OFFICE:
        return DepartureConfirmed(municipality=KRIENS, confirmed_on=today)
    if partner_id == LUCERNE_OFFICE:
        return ArrivalRegistered(municipality=LUCERNE, registered_on=today)
    return TaxRecordUpdated(updated_on=today)


async def _agency(client: PartnerClient, case_ids: set[str]) -> None:
    """An agency's system: confirm each delivery of a case this run reported."""
    async for delivery in client.deliveries(session_timeout_ms=6000, heartbeat_interval_ms=1000):
        if (
            isinstance(delivery.data, MoveReportedDelivery)
            and delivery.envelope.businessprocessid in case_ids
        ):
            await client.publish(
                confirmation_for(client.partner_id),
                business_process_id=delivery.envelope.businessprocessid,
                reference_id=delivery.envelope.id,
            )


def _is_done(view: CaseView) -> bool:
    """Completed, and the citizen's completion notice has a final delivery status."""
    return view.status == "completed" and any(
        step.service == "notifications" and step.detail and step.detail.startswith("relocation.completed")
        for step in view.timeline
    )


async def run_demo(
    settings: HubSettings,
    *,
    progress: Callable[[str], None],
    timeout_s: float = 90.0,
    language: Language = Language.DE,
) -> CaseView:
    bootstrap = settings.bootstrap_servers()
    agencies = [PartnerClient(bootstrap, pid) for pid in (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)]
    portal = PartnerClient(bootstrap, PORTAL)
    case_id = new_case_id()
    conn = await asyncpg.connect(settings.database_dsn())
    tasks: list[asyncio.Task[None]] = []
    try:
        for client in (*agencies, portal):
            await client.start()
        tasks = [asyncio.create_task(_agency(agency, {case_id})) for agency in agencies]
        await portal.publish(move_report(demo_person(), language), business_process_id=case_id)
        progress(f"portal reported move {case_id}")
        return await _follow(conn, case_id, progress, timeout_s)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in (*agencies, portal):
            await client.stop()
        await conn.close()


async def _follow(
    conn: asyncpg.Connection, case_id: str, progress: Callable[[str], None], timeout_s: float
) -> CaseView:
    deadline = asyncio.get_running_loop().time() + timeout_s
    shown = 0
    while True:
        view = await load_case_view(conn, case_id)
        if view is not None:
            for step in view.timeline[shown:]:
                progress(f"{step.service}: {step.event_type}" + (f" ({step.detail})" if step.detail else ""))
            shown = len(view.timeline)
            if _is_done(view):
                return view
        if asyncio.get_running_loop().time() > deadline:
            status = view.status if view else "not opened"
            raise DemoTimeout(f"case {case_id} not completed after {timeout_s:.0f}s (status: {status})")
        await asyncio.sleep(0.2)
