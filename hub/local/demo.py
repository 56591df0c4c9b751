"""The relocation scenario, played by the partners against a running hub.

The cantonal portal reports a move from Kriens to Lucerne; Kriens, Lucerne and the
cantonal tax office each receive their delivery and confirm it; the hub completes the
case and tells the citizen. Partners are real Kafka clients in this process, and each
agency answers as the party it is: a municipality confirms the departure of a move from
it and registers the arrival of a move to it (``variant`` changes the arrival's answer).
The intercantonal variant moves from Lucerne to Zug: two municipalities in two cantons
and both cantons' tax offices.
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
    EMMEN,
    KRIENS,
    LUCERNE,
    ZUG,
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
    Municipality,
    Opinion,
    Parcel,
    Person,
    Sex,
    TaxRecordUpdated,
    ahvn13_check_digit,
)
from hub.cli.casefile import CaseView, load_case_view, reader_master_key
from hub.errors import HubError
from hub.local.partner_client import Delivery, PartnerClient, RefusedDelivery
from hub.local.provisioning import local_keyring, local_partner
from hub.runtime.db import connect
from hub.runtime.settings import HubSettings
from hub.vault.crypto import MasterKey

log = logging.getLogger(__name__)

PORTAL = "CH/CAN/LU/eportal"
KRIENS_OFFICE = "CH/MUN/1059/einwohnerdienste"
LUCERNE_OFFICE = "CH/MUN/1061/einwohnerdienste"
TAX_OFFICE = "CH/CAN/LU/steuerverwaltung"
EMMEN_OFFICE = "CH/MUN/1024/einwohnerdienste"
ZUG_OFFICE = "CH/MUN/1711/einwohnerdienste"
ZUG_TAX_OFFICE = "CH/CAN/ZG/steuerverwaltung"
OPERATIONS = "CH/CAN/LU/ops"

# The residents' offices of the demo's municipalities, and each canton's tax office.
RESIDENTS_OFFICES = {KRIENS_OFFICE: KRIENS, LUCERNE_OFFICE: LUCERNE, EMMEN_OFFICE: EMMEN, ZUG_OFFICE: ZUG}
TAX_OFFICES = {"LU": TAX_OFFICE, "ZG": ZUG_TAX_OFFICE}
ADDRESSES = {
    KRIENS.bfs_number: Address(
        street="Schachenstrasse", house_number="12", postal_code="6010", town="Kriens"
    ),
    LUCERNE.bfs_number: Address(
        street="Hertensteinstrasse", house_number="3", postal_code="6004", town="Luzern"
    ),
    EMMEN.bfs_number: Address(
        street="Gerliswilstrasse", house_number="20", postal_code="6020", town="Emmenbrücke"
    ),
    ZUG.bfs_number: Address(street="Bahnhofstrasse", house_number="15", postal_code="6300", town="Zug"),
}
Move = tuple[Municipality, Municipality]  # (departure, arrival)
MAIN_MOVE: Move = (KRIENS, LUCERNE)
# Which move each variant plays, if not the main one.
MOVES: dict[str, Move] = {"intercantonal": (LUCERNE, ZUG)}


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


def move_report(
    person: Person,
    language: Language = Language.DE,
    *,
    departure: Municipality = KRIENS,
    arrival: Municipality = LUCERNE,
) -> MoveReported:
    return MoveReported(
        person=person,
        contact=Contact(email="anna.muster@example.ch", language=language),
        departure=departure,
        arrival=arrival,
        previous_address=_address_in(departure),
        new_address=_address_in(arrival),
        move_date=dt.date.today(),
    )


def _address_in(municipality: Municipality) -> Address:
    known = ADDRESSES.get(municipality.bfs_number)
    return known or Address(
        street="Dorfstrasse", house_number="1", postal_code="6000", town=municipality.name
    )


def move_parties(departure: Municipality, arrival: Municipality) -> tuple[str, ...]:
    """The demo agencies that are parties to a move (as the relocation definition resolves
    them): both residents' offices, the arrival canton's tax office and, across cantons,
    the departure canton's too."""
    offices = {place.bfs_number: pid for pid, place in RESIDENTS_OFFICES.items()}
    parties = [offices[departure.bfs_number], offices[arrival.bfs_number], TAX_OFFICES[arrival.canton]]
    if departure.canton != arrival.canton:
        parties.append(TAX_OFFICES[departure.canton])
    return tuple(dict.fromkeys(parties))


def new_case_id() -> str:
    # eUmzugCH prefixes the business process id per process.
    return f"eumzug-{uuid.uuid4()}"


Responder = Callable[[Delivery], tuple[Contract, ...]]
"""What an agency sends back for a delivery, in order (nothing: an empty tuple)."""


def relocation_responders(variant: str, move: Move | None = None) -> dict[str, Responder]:
    """How the agencies that are parties to ``move`` (by default the variant's) answer its
    delivery, each as the party it is: a residents' office confirms the departure of a move
    from its municipality and answers the arrival of a move to it (``variant`` changes that
    answer), a tax office updates its record."""
    today = dt.date.today()

    def tax_office(d: Delivery) -> tuple[Contract, ...]:
        return (TaxRecordUpdated(updated_on=today),) if _delivered_type(d) == MoveReported.event_type else ()

    departure, arrival = move or MOVES.get(variant, MAIN_MOVE)
    return {
        pid: _residents_office(pid, RESIDENTS_OFFICES[pid], variant)
        if pid in RESIDENTS_OFFICES
        else tax_office
        for pid in move_parties(departure, arrival)
    }


def _residents_office(partner_id: str, place: Municipality, variant: str) -> Responder:
    today = dt.date.today()
    departed = DepartureConfirmed(municipality=place, confirmed_on=today)
    arrived = _arrival_answers(partner_id, place, variant)

    def respond(delivery: Delivery) -> tuple[Contract, ...]:
        if _delivered_type(delivery) != MoveReported.event_type or not isinstance(
            delivery.data, CaseDelivery
        ):
            return ()
        data = delivery.data.data
        answers: tuple[Contract, ...] = ()
        if _bfs_number(data, "departure") == place.bfs_number:
            answers += (departed,)
        if _bfs_number(data, "arrival") == place.bfs_number:
            answers += arrived
        return answers

    return respond


def _arrival_answers(partner_id: str, place: Municipality, variant: str) -> tuple[Contract, ...]:
    today = dt.date.today()
    registered = ArrivalRegistered(municipality=place, registered_on=today)
    if variant == "rejection":
        return (
            CaseRejected(rejected_by=partner_id, reason="Die neue Adresse ist keine bewohnbare Wohnung."),
        )
    if variant == "escalation":
        return ()  # the arrival municipality never answers: the deadline passes
    if variant == "action-required":
        # The rental contract first; the citizen is asked, then the arrival is registered.
        asked = CaseActionRequired(
            requested_by=partner_id,
            action="Bitte laden Sie den Mietvertrag der neuen Wohnung im Portal hoch.",
            due_on=today + dt.timedelta(days=10),
        )
        return (asked, registered)
    return (registered,)


def _bfs_number(data: dict[str, object], side: str) -> object:
    place = data.get(side)
    return place.get("bfs_number") if isinstance(place, dict) else None


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
    "intercantonal": "completed",
}


async def run_demo(
    settings: HubSettings,
    *,
    progress: Callable[[str], None],
    timeout_s: float = 90.0,
    language: Language = Language.DE,
    variant: str = "main",
) -> CaseView:
    """The relocation case; ``variant`` is main, rejection, escalation, action-required or
    intercantonal (Lucerne to Zug). The agencies that are parties to the move answer."""
    departure, arrival = MOVES.get(variant, MAIN_MOVE)
    return await run_case(
        settings,
        opener=PORTAL,
        opening=move_report(demo_person(), language, departure=departure, arrival=arrival),
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
    keyring = local_keyring(settings)
    agencies = {pid: local_partner(settings, pid, keyring=keyring) for pid in responders}
    opener_client = local_partner(settings, opener, keyring=keyring)
    conn = await connect(settings.database_dsn(), application_name="hub-demo")
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
