"""Isolation matrix: every partner receives exactly the cases it is a party to and the types
its subscriptions allow, minimised to the subscriptions of the slots it fills, once, and
nothing else; only a case's parties move it.

Eleven partners (portal, four municipalities in two cantons, both cantons' tax offices,
building department, environment office, building insurance, operations) and every event
type the scenarios produce (the opening events, each agency step, action required,
rejection, completion), across six cases: Kriens to Lucerne three times (main, rejection,
action required), a building permit, a move from Lucerne to Zug (two cantons, four
parties at work) and the move from Emmen to Lucerne in which Kriens, uninvolved, tries to
act. Emmen, Zug and the Zug tax office hold the same subscriptions as their counterparts.

The expectation is computed independently of the routing code: each case's parties and the
slots they fill are what the scenario says they are (checked against the registry), and a
partner gets a (case, type) pair if it holds an approved subscription for the type naming a
slot it fills, or naming none while it fills a slot no subscription of its own names, or
spanning all cases; the delivery carries the fields, purposes and legal bases of exactly
those subscriptions (Lucerne records the departure of its move to Zug and registers the
arrival of the moves from Kriens and Emmen). Then a suspended partner receives, and may
send, nothing; and a slot nobody fills is shown to operations.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import (
    EMMEN,
    KRIENS,
    LUCERNE,
    ZUG,
    ArrivalRegistered,
    CaseActionRequired,
    CaseDelivery,
    CaseRejected,
    Contract,
    DepartureConfirmed,
    Envelope,
    Municipality,
    TaxRecordUpdated,
    parse_data,
)
from hub.cli.main import main
from hub.local.demo import (
    BUILDING_DEPARTMENT,
    BUILDING_INSURANCE,
    EMMEN_OFFICE,
    ENVIRONMENT_OFFICE,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    OPERATIONS,
    PORTAL,
    RESIDENTS_OFFICES,
    TAX_OFFICE,
    TAX_OFFICES,
    ZUG_OFFICE,
    ZUG_TAX_OFFICE,
    demo_person,
    move_parties,
    move_report,
    new_case_id,
    relocation_responders,
    run_agency,
    run_building_permit_demo,
    run_demo,
)
from hub.local.partner_client import PartnerClient
from hub.local.provisioning import local_partner
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from services.registry.settings import RegistrySettings
from tests.e2e.support import Hub, cancel_all, read_all, supervised_hub
from tests.fixtures.infrastructure import Infrastructure, point_cli_at

PARTNERS = (
    PORTAL,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    EMMEN_OFFICE,
    ZUG_OFFICE,
    TAX_OFFICE,
    ZUG_TAX_OFFICE,
    BUILDING_DEPARTMENT,
    ENVIRONMENT_OFFICE,
    BUILDING_INSURANCE,
    OPERATIONS,
)
QUIET = {"progress": lambda _line: None, "timeout_s": 90}
TODAY = "2026-12-01"
HORW = Municipality(bfs_number=1058, name="Horw", canton="LU")


@dataclass(frozen=True)
class Received:
    partner: str
    case_id: str
    event_id: str
    delivery: CaseDelivery


MOVE = "ch.lu.hub.relocation.move-reported.v1"
COMPLETED = "ch.lu.hub.case.completed.v1"


@dataclass(frozen=True)
class Case:
    case_type: str
    slots: Mapping[str, tuple[str, ...]]  # partner -> slots, as the scenario has them

    @property
    def parties(self) -> frozenset[str]:
        return frozenset(self.slots)


def move_slots(departure: Municipality, arrival: Municipality) -> dict[str, tuple[str, ...]]:
    """Who fills which slot of a move, as the relocation definition describes it: the portal
    opens it, each side's residents' office, the arrival canton's tax office and, across
    cantons, the departure canton's."""
    offices = {place.bfs_number: pid for pid, place in RESIDENTS_OFFICES.items()}
    filled = [
        (PORTAL, "opener"),
        (offices[departure.bfs_number], "departure-municipality"),
        (offices[arrival.bfs_number], "arrival-municipality"),
        (TAX_OFFICES[arrival.canton], "arrival-tax-office"),
    ]
    if departure.canton != arrival.canton:
        filled.append((TAX_OFFICES[departure.canton], "departure-tax-office"))
    slots: dict[str, tuple[str, ...]] = {}
    for partner, slot in filled:
        slots[partner] = (*slots.get(partner, ()), slot)
    return slots


@dataclass(frozen=True)
class Episode:
    """A case's state before and after some partner events: refused ones (a partner that is
    no party tried to move it) or the one it waited for."""

    case_id: str
    event_ids: tuple[str, ...]
    before: dict[str, Any]
    after: dict[str, Any]


@pytest.fixture(scope="module")
def running(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with supervised_hub(infrastructure, tmp_path_factory) as hub:
        yield hub


@pytest.fixture(scope="module")
def hub(running: Hub) -> HubSettings:
    return running.settings


@pytest.fixture(scope="module")
def scenarios(hub: HubSettings) -> tuple[dict[str, Case], dict[str, Episode]]:
    """Every case, with its parties; and the two cases an uninvolved municipality tried to move."""
    within = move_slots(KRIENS, LUCERNE)
    cases: dict[str, Case] = {}
    for variant in ("main", "rejection", "action-required"):
        view = asyncio.run(run_demo(hub, variant=variant, **QUIET))
        cases[view.case_id] = Case("relocation", within)
    building = asyncio.run(run_building_permit_demo(hub, progress=lambda _line: None))
    cases[building.case_id] = Case(
        "building-permit",
        {
            BUILDING_DEPARTMENT: ("opener", "building-department"),
            ENVIRONMENT_OFFICE: ("environment-office",),
            BUILDING_INSURANCE: ("building-insurance",),
        },
    )
    across, held = asyncio.run(_intercantonal_move(hub))
    cases[across] = Case("relocation", move_slots(LUCERNE, ZUG))
    emmen, kriens_tried = asyncio.run(_move_kriens_has_nothing_to_do_with(hub))
    cases[emmen] = Case("relocation", move_slots(EMMEN, LUCERNE))
    main_case = next(iter(cases))
    emmen_tried = asyncio.run(_uninvolved_tries_to_act(hub, EMMEN_OFFICE, EMMEN, main_case))
    return cases, {"held-back": held, "kriens": kriens_tried, "emmen": emmen_tried}


async def _intercantonal_move(settings: HubSettings) -> tuple[str, Episode]:
    """Lucerne to Zug, the agencies answering as the demo's do, except the departure canton's
    tax office, held back: the case must wait for it, then complete."""
    case_id = new_case_id()
    responders = relocation_responders("intercantonal")
    answering = {pid: responders[pid] for pid in move_parties(LUCERNE, ZUG) if pid != TAX_OFFICE}
    report = move_report(demo_person(21), departure=LUCERNE, arrival=ZUG)
    await _play(
        settings,
        case_id,
        report,
        answering,
        {"departure-confirmed", "arrival-registered", "tax-record-updated"},
    )
    before = await _state(settings, case_id)
    event_id = await _publish(settings, TAX_OFFICE, TaxRecordUpdated(updated_on=TODAY), case_id)
    await _until_status(settings, case_id, "completed")
    return case_id, Episode(case_id, (event_id,), before, await _state(settings, case_id))


async def _move_kriens_has_nothing_to_do_with(settings: HubSettings) -> tuple[str, Episode]:
    """Emmen to Lucerne: Emmen and the tax office answer; Kriens, uninvolved, sends Lucerne's
    milestone, a rejection and a request to the citizen; only then does Lucerne register."""
    case_id = new_case_id()
    responders = relocation_responders("main", (EMMEN, LUCERNE))
    answering = {pid: responders[pid] for pid in (EMMEN_OFFICE, TAX_OFFICE)}
    report = move_report(demo_person(22), departure=EMMEN, arrival=LUCERNE)
    await _play(settings, case_id, report, answering, {"departure-confirmed", "tax-record-updated"})
    intrusion = await _uninvolved_tries_to_act(settings, KRIENS_OFFICE, KRIENS, case_id)
    await _publish(
        settings, LUCERNE_OFFICE, ArrivalRegistered(municipality=LUCERNE, registered_on=TODAY), case_id
    )
    await _until_status(settings, case_id, "completed")
    return case_id, intrusion


async def _uninvolved_tries_to_act(
    settings: HubSettings, partner: str, municipality: Municipality, case_id: str
) -> Episode:
    before = await _state(settings, case_id)
    attempts: tuple[Contract, ...] = (
        ArrivalRegistered(municipality=municipality, registered_on=TODAY),
        CaseRejected(rejected_by=partner, reason="Die Person ist hier nicht gemeldet."),
        CaseActionRequired(requested_by=partner, action="Bitte melden Sie sich am Schalter."),
    )
    event_ids = tuple([await _publish(settings, partner, attempt, case_id) for attempt in attempts])
    await _until(
        settings, "SELECT count(*) FROM registry.dead_letters WHERE event_id = ANY($1)", list(event_ids), 3
    )
    return Episode(case_id, event_ids, before, await _state(settings, case_id))


async def _play(
    settings: HubSettings, case_id: str, opening: Contract, answering: dict[str, Any], milestones: set[str]
) -> None:
    """The portal opens the case; the ``answering`` agencies answer until ``milestones`` are reached."""
    clients = {pid: _client(settings, pid) for pid in answering}
    for client in clients.values():
        await client.start()
    tasks = [asyncio.create_task(run_agency(clients[pid], {case_id}, answering[pid])) for pid in clients]
    try:
        await _publish(settings, PORTAL, opening, case_id)
        query = "SELECT count(*) FROM registry.case_milestones WHERE case_id = $1 AND milestone = ANY($2)"
        await _until(settings, query, case_id, len(milestones), extra=sorted(milestones))
    finally:
        await cancel_all(tasks)
        for client in clients.values():
            await client.stop()


async def _state(settings: HubSettings, case_id: str) -> dict[str, Any]:
    """What a step on the case changes: status, milestones, partner steps, deliveries, notices
    (as the registry records them, in the step's own transaction: nothing here lags behind)."""
    row = await _one(
        settings,
        """
        SELECT c.status,
               (SELECT array_agg(milestone || '@' || partner_id ORDER BY milestone)
                  FROM registry.case_milestones m WHERE m.case_id = c.case_id) AS milestones,
               (SELECT count(*) FROM registry.timeline t
                 WHERE t.case_id = c.case_id AND t.service NOT IN ('registry', 'identity', 'notifications'))
                 AS partner_steps,
               (SELECT count(*) FROM registry.audit_log a
                 WHERE a.case_id = c.case_id AND a.decision = 'delivered') AS deliveries,
               (SELECT count(*) FROM registry.outbox o
                 WHERE o.aggregateid = c.case_id AND o.topic = 'hub.notification.requests') AS notices
        FROM registry.cases c WHERE c.case_id = $1
        """,
        case_id,
    )
    return dict(row)


def _client(settings: HubSettings, partner: str) -> PartnerClient:
    return local_partner(settings, partner)


async def _publish(settings: HubSettings, partner: str, event: Contract, case_id: str) -> str:
    client = _client(settings, partner)
    await client.start()
    try:
        return (await client.publish(event, business_process_id=case_id)).id
    finally:
        await client.stop()


async def _one(settings: HubSettings, sql: str, *args: Any) -> asyncpg.Record:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        row = await conn.fetchrow(sql, *args)
    finally:
        await conn.close()
    assert row is not None
    return row


async def _rows(settings: HubSettings, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        return [dict(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def _until(settings: HubSettings, sql: str, arg: Any, wanted: int, *, extra: Any = None) -> None:
    args = (arg,) if extra is None else (arg, extra)
    deadline = time.monotonic() + 60
    count = None
    while time.monotonic() < deadline:
        count = (await _one(settings, sql, *args))[0]
        if count >= wanted:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"waited for {wanted} rows of {sql}, last saw {count}")


async def _until_status(settings: HubSettings, case_id: str, status: str) -> None:
    query = "SELECT count(*) FROM registry.cases WHERE case_id = $1 AND status = $2"
    await _until(settings, query, case_id, 1, extra=status)


async def _received(settings: HubSettings, case_ids: set[str], partners: tuple[str, ...]) -> list[Received]:
    """Every delivery of ``case_ids`` on each partner's topic, read to its end (no consumer group)
    once the registry's relay has published every delivery of them it wrote."""
    unpublished = (
        "SELECT count(*) FROM registry.outbox WHERE aggregateid = ANY($1)"
        " AND topic LIKE 'hub.delivery.%' AND published_at IS NULL"
    )
    deadline = time.monotonic() + 60
    while (await _one(settings, unpublished, list(case_ids)))[0]:
        assert time.monotonic() < deadline, "the registry's relay did not publish the deliveries"
        await asyncio.sleep(0.2)
    found: list[Received] = []
    for partner in partners:
        for record in await read_all(settings, delivery_topic(partner)):
            envelope = Envelope.from_headers(record.headers)
            if envelope.businessprocessid not in case_ids:
                continue
            data = parse_data(envelope.type, record.value or b"")
            assert isinstance(data, CaseDelivery), f"{partner} got a {envelope.type}, not a delivery"
            found.append(Received(partner, envelope.businessprocessid or "", envelope.id, data))
    return found


@pytest.fixture(scope="module")
def received(hub: HubSettings, scenarios: tuple[dict[str, Case], Any]) -> list[Received]:
    """What every partner received of the scenarios' cases, read once for the tests that compare."""
    cases, _ = scenarios
    return asyncio.run(_received(hub, set(cases), PARTNERS))


def _subscriptions(settings: HubSettings) -> list[dict[str, Any]]:
    return asyncio.run(
        _rows(
            settings,
            "SELECT s.partner_id, s.event_type, s.case_type, s.scope, s.slot, s.purpose, s.legal_basis,"
            " s.fields FROM registry.subscriptions s JOIN registry.partners p USING (partner_id)"
            " WHERE s.status = 'approved' AND p.status = 'active' ORDER BY s.id",
        )
    )


def _applying(
    subscriptions: list[dict[str, Any]], case: Case, partner: str, event_type: str
) -> list[dict[str, Any]]:
    """The partner's subscriptions that apply to an event of the case: spanning all cases,
    naming a slot it fills, or naming none while it fills a slot none of them names."""
    mine = [
        sub
        for sub in subscriptions
        if sub["partner_id"] == partner
        and sub["event_type"] == event_type
        and sub["case_type"] in (None, case.case_type)
    ]
    filled = set(case.slots.get(partner, ()))
    named = {sub["slot"] for sub in mine if sub["slot"] is not None}
    return [
        sub
        for sub in mine
        if sub["scope"] == "all-cases"
        or (sub["slot"] in filled if sub["slot"] is not None else bool(filled - named))
    ]


def _expected(settings: HubSettings, cases: dict[str, Case]) -> set[tuple[str, str, str]]:
    """(case, partner, event type): a party with an approved subscription that applies to its
    slots, or an all-cases scope, for what happened in each case."""
    subscriptions = _subscriptions(settings)
    happened = asyncio.run(
        _rows(
            settings,
            "SELECT DISTINCT case_id, service, event_type FROM registry.timeline WHERE case_id = ANY($1)",
            list(cases),
        )
    )
    expected = set()
    for step in happened:
        event_type, case = step["event_type"], cases[step["case_id"]]
        if event_type == CaseDelivery.event_type or step["service"] in ("identity", "notifications"):
            continue
        for partner in {sub["partner_id"] for sub in subscriptions}:
            if not _applying(subscriptions, case, partner, event_type):
                continue
            if event_type.endswith("case.rejected.v1") and partner == step["service"]:
                continue  # the rejecting partner is not told its own news
            expected.add((step["case_id"], partner, event_type))
    return expected


def test_each_case_has_the_parties_its_scenario_names(
    scenarios: tuple[dict[str, Case], Any], hub: HubSettings
) -> None:
    cases, _ = scenarios
    rows = asyncio.run(
        _rows(
            hub,
            "SELECT case_id, partner_id, slot FROM registry.case_parties WHERE case_id = ANY($1)"
            " ORDER BY case_id, position",
            list(cases),
        )
    )
    resolved: dict[str, dict[str, tuple[str, ...]]] = {case_id: {} for case_id in cases}
    for row in rows:
        assert row["partner_id"] is not None, row  # every slot of these cases is filled
        mine = resolved[row["case_id"]]
        mine[row["partner_id"]] = (*mine.get(row["partner_id"], ()), row["slot"])
    assert resolved == {case_id: dict(case.slots) for case_id, case in cases.items()}


def test_each_partner_receives_exactly_its_cases_and_subscriptions_once(
    hub: HubSettings, scenarios: tuple[dict[str, Case], Any], received: list[Received]
) -> None:
    cases, _ = scenarios
    actual = [(r.case_id, r.partner, r.delivery.event_type_delivered) for r in received]
    expected = _expected(hub, cases)
    assert len(actual) == len(set(actual))  # nothing twice
    assert set(actual) == expected
    # The matrix spans every event type of both case types, delivered or (unsubscribed) not.
    happened = {
        row["event_type"]
        for row in asyncio.run(
            _rows(
                hub, "SELECT DISTINCT event_type FROM registry.timeline WHERE case_id = ANY($1)", list(cases)
            )
        )
    }
    internal = (CaseDelivery.event_type, ".identity.", ".notification.")
    partner_types = {t for t in happened if t.startswith("ch.lu.hub.") and not any(i in t for i in internal)}
    assert len(partner_types) >= 10
    delivered_types = {event_type for _, _, event_type in expected}
    assert len(delivered_types) >= 6
    assert {partner for _, partner, _ in expected} >= {
        KRIENS_OFFICE,
        LUCERNE_OFFICE,
        EMMEN_OFFICE,
        ZUG_OFFICE,
        TAX_OFFICE,
        ZUG_TAX_OFFICE,
        ENVIRONMENT_OFFICE,
        BUILDING_INSURANCE,
        BUILDING_DEPARTMENT,
    }
    assert not any(t.endswith("action-required.v1") for t in delivered_types)  # nobody subscribed
    assert not any(t.endswith("departure-confirmed.v1") for t in delivered_types)


def test_an_uninvolved_municipality_receives_nothing_of_a_case(
    scenarios: tuple[dict[str, Case], Any], received: list[Received]
) -> None:
    """Subscribed to the same types as the parties, Emmen, Zug and the Zug tax office get
    nothing of Kriens's moves; Kriens nothing of Emmen's; Zug's offices only the Zug move."""
    cases, _ = scenarios
    by_partner: dict[str, set[str]] = {}
    for item in received:
        by_partner.setdefault(item.partner, set()).add(item.case_id)
    for case_id, case in cases.items():
        outsiders = {r.partner for r in received if r.case_id == case_id} - case.parties
        assert outsiders == set(), (case_id, outsiders)
    emmen_move = next(c for c, case in cases.items() if EMMEN_OFFICE in case.parties)
    zug_move = next(c for c, case in cases.items() if ZUG_OFFICE in case.parties)
    assert by_partner[EMMEN_OFFICE] == {emmen_move}
    assert by_partner[ZUG_OFFICE] == by_partner[ZUG_TAX_OFFICE] == {zug_move}
    assert emmen_move not in by_partner[KRIENS_OFFICE]
    assert OPERATIONS not in by_partner  # no escalation, no missing party in these cases


def test_every_delivery_is_minimised_to_its_subscription(
    hub: HubSettings, scenarios: tuple[dict[str, Case], Any], received: list[Received]
) -> None:
    """Each delivery carries only the fields of the subscriptions that apply to the slots its
    recipient fills, and names their purposes and legal bases; never the AHVN13."""
    cases, _ = scenarios
    subscriptions = _subscriptions(hub)
    vns = {demo_person(serial).vn for serial in (1, 2, 21, 22)}
    assert received
    for item in received:
        event_type = item.delivery.event_type_delivered
        what = (item.partner, item.case_id, event_type)
        applying = _applying(subscriptions, cases[item.case_id], item.partner, event_type)
        assert applying, what
        granted = {name for sub in applying for name in sub["fields"]}
        top_level = {name.split(".")[0] for name in granted}
        assert set(item.delivery.data) <= top_level, what
        assert item.delivery.recipient == item.partner
        assert item.delivery.purpose == " | ".join(dict.fromkeys(sub["purpose"] for sub in applying)), what
        assert item.delivery.legal_basis == " | ".join(dict.fromkeys(sub["legal_basis"] for sub in applying))
        if item.delivery.subject is not None:
            shown = {k for k, v in item.delivery.subject.model_dump().items() if v is not None}
            allowed_person = {name.split(".", 1)[1] for name in granted if "." in name}
            assert shown - {"sector_pseudonym", "local_person_id"} <= allowed_person
        dumped = json.dumps(item.delivery.model_dump(mode="json"))
        assert not any(vn in dumped for vn in vns)


def test_a_municipality_receives_each_move_under_the_subscription_of_its_side(
    scenarios: tuple[dict[str, Case], Any], received: list[Received]
) -> None:
    """Lucerne is the departure of the move to Zug and the arrival of the moves from Kriens
    and Emmen: each delivery has that side's purpose, legal basis and fields."""
    cases, _ = scenarios
    delivered = {(r.case_id, r.partner, r.delivery.event_type_delivered): r.delivery for r in received}
    moves = {c for c, case in cases.items() if case.case_type == "relocation"}
    away = next(c for c in moves if cases[c].slots.get(LUCERNE_OFFICE) == ("departure-municipality",))
    homes = [c for c in moves if cases[c].slots.get(LUCERNE_OFFICE) == ("arrival-municipality",)]
    assert len(homes) == 4  # three from Kriens, one from Emmen

    departure = delivered[(away, LUCERNE_OFFICE, MOVE)]
    assert (departure.purpose, departure.legal_basis.split(";")[0]) == ("record the departure", "RHG Art. 12")
    assert {"new_address", "arrival", "move_date"} <= set(departure.data)
    assert "previous_address" not in departure.data  # the person is in its own register already
    assert delivered[(away, LUCERNE_OFFICE, COMPLETED)].purpose == "close the departure file"
    for home in homes:
        arrival = delivered[(home, LUCERNE_OFFICE, MOVE)]
        assert (arrival.purpose, arrival.legal_basis.split(";")[0]) == ("register the arrival", "RHG Art. 11")
        assert {"new_address", "previous_address", "departure", "move_date"} <= set(arrival.data)
        if (home, LUCERNE_OFFICE, COMPLETED) in delivered:
            assert delivered[(home, LUCERNE_OFFICE, COMPLETED)].purpose == "close the arrival file"
    # The other sides of the move to Zug, each as what it is to it.
    zug = delivered[(away, ZUG_OFFICE, MOVE)]
    assert (zug.purpose, zug.legal_basis.split(";")[0]) == ("register the arrival", "RHG Art. 11")
    assert "previous_address" in zug.data
    given_up = delivered[(away, TAX_OFFICE, MOVE)]
    assert given_up.purpose == "give up the tax domicile"
    assert given_up.legal_basis.startswith("StHG Art. 4b;")
    assert "new_address" not in given_up.data
    taken = delivered[(away, ZUG_TAX_OFFICE, MOVE)]
    assert (taken.purpose, taken.legal_basis.split(";")[0]) == ("assign the tax domicile", "StHG Art. 4")
    assert "new_address" in taken.data


@pytest.mark.parametrize("who", ["kriens", "emmen"])
def test_an_uninvolved_municipality_cannot_move_a_case(
    hub: HubSettings,
    scenarios: tuple[dict[str, Case], dict[str, Episode]],
    who: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its milestone, rejection and request to the citizen: each refused as not a party,
    dead-lettered, in `hub audit refusals`; the case untouched."""
    _, intrusions = scenarios
    intrusion = intrusions[who]
    partner = KRIENS_OFFICE if who == "kriens" else EMMEN_OFFICE
    assert intrusion.after == intrusion.before
    dead = asyncio.run(
        _rows(
            hub,
            "SELECT event_id, error_class, error_message FROM registry.dead_letters WHERE event_id = ANY($1)",
            list(intrusion.event_ids),
        )
    )
    assert {d["event_id"] for d in dead} == set(intrusion.event_ids)
    assert {d["error_class"] for d in dead} == {"NotAParty"}
    assert all(
        d["error_message"].startswith(f"{partner} is not a party to this relocation case") for d in dead
    )
    point_cli_at(hub, monkeypatch, tmp_path)
    capsys.readouterr()
    assert main(["audit", "refusals", "--partner", partner, "--json"]) == 0
    refusals = {r["event_id"]: r for r in json.loads(capsys.readouterr().out)}
    for event_id in intrusion.event_ids:
        assert refusals[event_id]["reason_class"] == "not-a-party"
        assert refusals[event_id]["case_id"] == intrusion.case_id
        assert refusals[event_id]["sender_verified"] is True  # its own signed events: it is who it says


def test_kriens_acting_on_a_move_from_emmen_to_lucerne_changes_nothing_and_lucerne_completes_it(
    hub: HubSettings, scenarios: tuple[dict[str, Case], dict[str, Episode]], infrastructure: Infrastructure
) -> None:
    """Kriens, which has nothing to do with a move from Emmen to Lucerne, sends Lucerne's
    `arrival-registered` on it: refused, the citizen is not told, the case stays open; Lucerne
    then registers, and the case completes."""
    _, intrusions = scenarios
    tried = intrusions["kriens"]
    assert tried.before["status"] == tried.after["status"] == "in-progress"
    assert tried.before["notices"] == tried.after["notices"]  # no notice was even requested
    assert sorted(tried.after["milestones"]) == [
        f"departure-confirmed@{EMMEN_OFFICE}",
        f"tax-record-updated@{TAX_OFFICE}",
    ]
    final = asyncio.run(_state(hub, tried.case_id))
    assert final["status"] == "completed"
    assert f"arrival-registered@{LUCERNE_OFFICE}" in final["milestones"]
    mails = [m for m in infrastructure.smtp.messages() if m["X-Hub-Case-Id"] == tried.case_id]
    arrival = [m for m in mails if ".arrival-registered@" in str(m["Message-ID"])]
    assert len(arrival) == 1  # after Lucerne's registration
    assert "Luzern" in arrival[0].get_content()
    assert not [
        m
        for m in mails
        if ".rejected@" in str(m["Message-ID"]) or ".action-required@" in str(m["Message-ID"])
    ]


def test_a_move_across_cantons_waits_for_both_tax_offices(
    scenarios: tuple[dict[str, Case], dict[str, Episode]], received: list[Received]
) -> None:
    _, intrusions = scenarios
    held = intrusions["held-back"]
    # Three of four milestones in: the departure canton's tax office is still missing.
    assert held.before["status"] == "in-progress"
    assert sorted(held.before["milestones"]) == [
        f"arrival-registered@{ZUG_OFFICE}",
        f"departure-confirmed@{LUCERNE_OFFICE}",
        f"tax-record-updated@{ZUG_TAX_OFFICE}",
    ]
    assert held.after["status"] == "completed"
    assert f"departure-tax-record-updated@{TAX_OFFICE}" in held.after["milestones"]
    mine = [r for r in received if r.case_id == held.case_id]
    moves = {r.partner for r in mine if r.delivery.event_type_delivered.endswith("move-reported.v1")}
    completions = {r.partner for r in mine if r.delivery.event_type_delivered.endswith("case.completed.v1")}
    assert moves == completions == {LUCERNE_OFFICE, ZUG_OFFICE, TAX_OFFICE, ZUG_TAX_OFFICE}
    zug = next(
        r
        for r in mine
        if r.partner == ZUG_OFFICE and r.delivery.event_type_delivered.endswith("move-reported.v1")
    )
    assert zug.delivery.data["arrival"]["canton"] == "ZG"
    # Zug registers the arrival (where the person comes from); Lucerne records the departure.
    assert "previous_address" in zug.delivery.data
    lucerne = next(
        r
        for r in mine
        if r.partner == LUCERNE_OFFICE and r.delivery.event_type_delivered.endswith("move-reported.v1")
    )
    assert "previous_address" not in lucerne.delivery.data
    assert zug.delivery.purpose == "register the arrival"
    assert lucerne.delivery.purpose == "record the departure"


def test_a_slot_nobody_fills_is_shown_on_the_case_and_to_operations(
    running: Hub,
    hub: HubSettings,
    scenarios: tuple[dict[str, Case], Any],
    infrastructure: Infrastructure,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A move to Horw, which has no partner in the register: the arrival slot stays open."""
    case_id = new_case_id()
    asyncio.run(_publish(hub, PORTAL, move_report(demo_person(23), departure=KRIENS, arrival=HORW), case_id))
    asyncio.run(
        _until(
            hub,
            "SELECT count(*) FROM registry.audit_log WHERE case_id = $1 AND partner_id = $2",
            case_id,
            1,
            extra=OPERATIONS,
        )
    )
    point_cli_at(hub, monkeypatch, tmp_path)
    capsys.readouterr()
    assert main(["case", "show", case_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["unfilled_slots"] == ["arrival-municipality"]
    arrival = next(p for p in shown["parties"] if p["slot"] == "arrival-municipality")
    assert (arrival["partner_id"], arrival["jurisdiction"]) == (None, "municipality 1058 (LU)")
    assert {p["partner_id"] for p in shown["parties"] if p["filled"]} == {PORTAL, KRIENS_OFFICE, TAX_OFFICE}
    assert any(s["event_type"] == "party-unfilled" for s in shown["timeline"])
    assert main(["case", "show", case_id]) == 0
    assert (
        "UNFILLED (no active partner with role municipality for municipality 1058 (LU))"
        in capsys.readouterr().out
    )
    assert main(["case", "unfilled", "--json"]) == 0
    unfilled = [s for s in json.loads(capsys.readouterr().out) if s["case_id"] == case_id]
    assert [(s["slot"], s["jurisdiction"]) for s in unfilled] == [
        ("arrival-municipality", "municipality 1058 (LU)")
    ]
    registry_port = running.supervisor.processes["registry"].health_port
    with urllib.request.urlopen(f"http://127.0.0.1:{registry_port}/metrics", timeout=5) as answer:
        assert 'hub_case_unfilled_slots{service="registry"} 1' in answer.read().decode()
    # Operations: a delivery under their all-cases subscription, and a mail.
    [told] = [r for r in asyncio.run(_received(hub, {case_id}, (OPERATIONS,)))]
    assert told.delivery.event_type_delivered == "ch.lu.hub.case.party-missing.v1"
    assert told.delivery.data["slot"] == "arrival-municipality"
    deadline = time.monotonic() + 30
    while not (
        mail := [
            m
            for m in infrastructure.smtp.messages()
            if m["X-Hub-Case-Id"] == case_id and m["To"] == RegistrySettings().ops_email
        ]
    ):
        assert time.monotonic() < deadline, "operations were not mailed"
        time.sleep(0.3)
    assert "arrival-municipality" in mail[0].get_content()


def test_a_suspended_partner_receives_nothing_and_may_send_nothing(
    hub: HubSettings, scenarios: tuple[dict[str, Case], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in this module: Kriens stays suspended."""
    point_cli_at(hub, monkeypatch, tmp_path)
    assert main(["partner", "suspend", KRIENS_OFFICE, "--reason", "isolation test"]) == 0
    _wait_for(hub, "SELECT status FROM registry.partners WHERE partner_id = $1", KRIENS_OFFICE, "suspended")

    case_id = new_case_id()
    asyncio.run(_publish(hub, PORTAL, move_report(demo_person(7)), case_id))
    confirmation = DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY)
    asyncio.run(_publish(hub, KRIENS_OFFICE, confirmation, case_id))
    # The others are served; the suspended partner's confirmation is refused and recorded.
    _wait_for(
        hub,
        "SELECT count(*)::text FROM registry.dead_letters WHERE event_type = $1 AND error_message LIKE $2",
        DepartureConfirmed.event_type,
        "1",
        extra=f"%{KRIENS_OFFICE} is suspended%",
    )
    delivered = (
        "SELECT count(*) FROM registry.audit_log WHERE case_id = $1 AND decision = 'delivered'"
        " AND event_type = $2"
    )
    # Identity answered and the move went out (Kriens's slot is unfilled now: it is suspended).
    asyncio.run(_until(hub, delivered, case_id, 2, extra="ch.lu.hub.relocation.move-reported.v1"))
    received = asyncio.run(_received(hub, {case_id}, (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)))
    receivers = {r.partner for r in received}
    assert receivers == {LUCERNE_OFFICE, TAX_OFFICE}
    milestones = asyncio.run(
        _rows(hub, "SELECT milestone FROM registry.case_milestones WHERE case_id = $1", case_id)
    )
    assert milestones == []


def _wait_for(settings: HubSettings, sql: str, arg: str, wanted: str, *, extra: str | None = None) -> None:
    args = (arg, extra) if extra is not None else (arg,)
    deadline = time.monotonic() + 60
    value = None
    while time.monotonic() < deadline:
        rows = asyncio.run(_rows(settings, sql, *args))
        value = next(iter(rows[0].values())) if rows else None
        if value == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"waited for {wanted!r}, last saw {value!r}")
