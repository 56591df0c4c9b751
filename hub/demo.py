"""The relocation scenario, played by the partners against a running hub.

The cantonal portal reports a move from Kriens to Lucerne; Kriens, Lucerne and the
cantonal tax office each receive their delivery and confirm it; the hub completes the
case and tells the citizen. Partners are real Kafka clients in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable

import asyncpg

from contracts import (
    KRIENS,
    LUCERNE,
    Address,
    ArrivalRegistered,
    BuildingProject,
    CaseActionRequired,
    CaseDelivery,
    CaseRejected,
    Channel,
    ConsultationRequested,
    Contact,
    Contract,
    DepartureConfirmed,
    EnvironmentOpinionGiven,
    InsuranceOpinionGiven,
    Language,
    MoveReported,
    Opinion,
    Parcel,
    Person,
    Sex,
    TaxRecordUpdated,
    ahvn13_check_digit,
)
from hub.casefile import CaseView, load_case_view, reader_master_key
from hub.errors import HubError
from hub.partner import Delivery, PartnerClient, RefusedDelivery
from hub.settings import HubSettings
from hub.vault import MasterKey

log = logging.getLogger(__name__)

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


Responder = Callable[[Delivery], tuple[Contract, ...]]
"""What an agency sends back for a delivery, in order (nothing: an empty tuple)."""


def relocation_responders(variant: str) -> dict[str, Responder]:
    """How each agency answers the move delivery; ``variant`` changes Lucerne's answer."""
    today = dt.date.today()

    def when_move_delivered(*answers: Contract) -> Responder:
        return lambda d: answers if _delivered_type(d) == MoveReported.event_type else ()

    registered = ArrivalRegistered(municipality=LUCERNE, registered_on=today)
    lucerne: tuple[Contract, ...] = (registered,)
    if variant == "rejection":
        lucerne = (
            CaseRejected(rejected_by=LUCERNE_OFFICE, reason="Die neue Adresse ist keine bewohnbare Wohnung."),
        )
    elif variant == "escalation":
        lucerne = ()  # Lucerne never answers: the deadline passes
    elif variant == "action-required":
        # Lucerne needs the rental contract first; the citizen is asked, then Lucerne registers.
        asked = CaseActionRequired(
            requested_by=LUCERNE_OFFICE,
            action="Bitte laden Sie den Mietvertrag der neuen Wohnung im Portal hoch.",
            due_on=today + dt.timedelta(days=10),
        )
        lucerne = (asked, registered)
    return {
        KRIENS_OFFICE: when_move_delivered(DepartureConfirmed(municipality=KRIENS, confirmed_on=today)),
        LUCERNE_OFFICE: when_move_delivered(*lucerne),
        TAX_OFFICE: when_move_delivered(TaxRecordUpdated(updated_on=today)),
    }


def _delivered_type(delivery: Delivery) -> str | None:
    return delivery.data.event_type_delivered if isinstance(delivery.data, CaseDelivery) else None


def _log_refused(refused: RefusedDelivery) -> None:
    # The session's broker may hold records of other hubs (tests); they are skipped, not fatal.
    log.warning("refused %s[%d]@%d: %s", refused.topic, refused.partition, refused.offset, refused.error)


async def run_agency(
    client: PartnerClient,
    case_ids: set[str],
    respond: Responder,
    on_refused: Callable[[RefusedDelivery], None] = _log_refused,
) -> None:
    """An agency's system: answer each delivery of a case this run started (and the hub
    signed) with what ``respond`` says, until cancelled."""
    async for delivery in client.deliveries(
        on_refused=on_refused, session_timeout_ms=6000, heartbeat_interval_ms=1000
    ):
        if delivery.envelope.businessprocessid not in case_ids:
            continue
        for answer in respond(delivery):
            await client.publish(
                answer,
                business_process_id=delivery.envelope.businessprocessid,
                reference_id=delivery.envelope.id,
            )


FINAL_STEP = {"completed": "completed", "rejected": "rejected", "escalated": "escalated"}


def _is_done(view: CaseView, expected: str) -> bool:
    """The expected status is reached and its notification has a delivery status."""
    if view.status != expected:
        return False
    template = f".{FINAL_STEP[expected]} via "
    # The inbox copy is stored at once; the notice the citizen is sent is what counts.
    return any(
        step.service == "notifications"
        and template in (detail := step.detail or "")
        and f"{template}{Channel.INBOX.value}:" not in detail
        for step in view.timeline
    )


EXPECTED_STATUS = {
    "main": "completed",
    "rejection": "rejected",
    "escalation": "escalated",
    "action-required": "completed",
}


async def run_demo(
    settings: HubSettings,
    *,
    progress: Callable[[str], None],
    timeout_s: float = 90.0,
    language: Language = Language.DE,
    variant: str = "main",
) -> CaseView:
    """The relocation case; ``variant`` is main, rejection, escalation or action-required."""
    return await run_case(
        settings,
        opener=PORTAL,
        opening=move_report(demo_person(), language),
        case_id=new_case_id(),
        responders=relocation_responders(variant),
        expected=EXPECTED_STATUS[variant],
        progress=progress,
        timeout_s=timeout_s,
    )


async def run_case(
    settings: HubSettings,
    *,
    opener: str,
    opening: Contract,
    case_id: str,
    responders: dict[str, Responder],
    expected: str,
    progress: Callable[[str], None],
    timeout_s: float,
) -> CaseView:
    """Partners play one case: ``opener`` publishes, the others answer their deliveries."""
    bootstrap = settings.bootstrap_servers()
    idempotence = settings.kafka_enable_idempotence
    agencies = {pid: PartnerClient(bootstrap, pid, idempotence=idempotence) for pid in responders}
    opener_client = PartnerClient(bootstrap, opener, idempotence=idempotence)
    conn = await asyncpg.connect(settings.database_dsn())
    tasks: list[asyncio.Task[None]] = []
    try:
        for client in (*agencies.values(), opener_client):
            await client.start()
        tasks = [
            asyncio.create_task(run_agency(agencies[pid], {case_id}, responders[pid])) for pid in agencies
        ]
        await opener_client.publish(opening, business_process_id=case_id)
        progress(f"{opener} opened {case_id}")
        master = reader_master_key(settings)  # the services created it: the hub is up
        return await _follow(conn, case_id, progress, timeout_s, expected, master)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for client in (*agencies.values(), opener_client):
            await client.stop()
        await conn.close()


async def _follow(
    conn: asyncpg.Connection,
    case_id: str,
    progress: Callable[[str], None],
    timeout_s: float,
    expected: str,
    master: MasterKey | None,
) -> CaseView:
    deadline = asyncio.get_running_loop().time() + timeout_s
    shown = 0
    while True:
        view = await load_case_view(conn, case_id, master=master)
        if view is not None:
            for step in view.timeline[shown:]:
                progress(f"{step.service}: {step.event_type}" + (f" ({step.detail})" if step.detail else ""))
            shown = len(view.timeline)
            if _is_done(view, expected):
                return view
        if asyncio.get_running_loop().time() > deadline:
            status = view.status if view else "not opened"
            raise DemoTimeout(f"case {case_id} not {expected} after {timeout_s:.0f}s (status: {status})")
        await asyncio.sleep(0.2)


BUILDING_DEPARTMENT = "CH/MUN/1061/baudirektion"
ENVIRONMENT_OFFICE = "CH/CAN/LU/uwe"
BUILDING_INSURANCE = "CH/CAN/LU/gvl"


def consultation_request(applicant: Person) -> ConsultationRequested:
    return ConsultationRequested(
        applicant=applicant,
        contact=Contact(email="anna.muster@example.ch", language=Language.DE),
        parcel=Parcel(municipality=LUCERNE, parcel_number="1234", egrid="CH123456789012"),
        project=BuildingProject(
            description="Anbau Wintergarten mit Wärmepumpe",
            address=Address(street="Hertensteinstrasse", house_number="3", postal_code="6004", town="Luzern"),
            building_volume_m3=140,
            heating="Luft-Wasser-Wärmepumpe",
        ),
        dossier_number="BG-2026-0815",
    )


def building_permit_responders() -> dict[str, Responder]:
    def opinion(answer: Contract) -> Responder:
        return lambda d: (answer,) if _delivered_type(d) == ConsultationRequested.event_type else ()

    return {
        ENVIRONMENT_OFFICE: opinion(
            EnvironmentOpinionGiven(
                opinion=Opinion.APPROVE_WITH_CONDITIONS, conditions=("Lärmschutz Wärmepumpe",)
            )
        ),
        BUILDING_INSURANCE: opinion(InsuranceOpinionGiven(opinion=Opinion.APPROVE)),
        BUILDING_DEPARTMENT: lambda _d: (),  # receives the opinions and the completion
    }


async def run_building_permit_demo(
    settings: HubSettings, *, progress: Callable[[str], None], timeout_s: float = 90.0
) -> CaseView:
    return await run_case(
        settings,
        opener=BUILDING_DEPARTMENT,
        opening=consultation_request(demo_person(2)),
        case_id=f"baugesuch-{uuid.uuid4()}",
        responders=building_permit_responders(),
        expected="completed",
        progress=progress,
        timeout_s=timeout_s,
    )
