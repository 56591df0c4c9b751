"""Parties of a case on real PostgreSQL, through the registry's own routes: a case reaches only
its parties, each under the subscriptions of the slots it fills, only they can move it, a slot
nobody fills is shown and reported, and a partner registered later takes it.

Records go through the runtime's entrypoint translation as Kafka would hand them over
(the routes come from the registry's composition root, so every check of the service runs);
identity's answer and announcements are played as identity would send them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import (
    EMMEN,
    KRIENS,
    LUCERNE,
    ZUG,
    ArrivalRegistered,
    CaseActionRequired,
    CaseRejected,
    Contract,
    DepartureConfirmed,
    Envelope,
    IssuedPseudonym,
    Jurisdiction,
    Municipality,
    PseudonymsIssued,
    Sector,
    SetSubscription,
    TaxRecordUpdated,
)
from contracts.catalog import serialize_data
from contracts.identity import PartnerRegistered, PartnerStatusChanged
from hub.audit import store as audit_store
from hub.cli.casefile import load_case_view, load_unfilled_slots
from hub.local.demo import (
    EMMEN_OFFICE,
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    OPERATIONS,
    PORTAL,
    TAX_OFFICE,
    ZUG_OFFICE,
    ZUG_TAX_OFFICE,
    demo_person,
    move_report,
    new_case_id,
)
from hub.runtime import topics
from hub.runtime.consumer import MessageProcessor, Outcome, RetryPolicy, Route
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.service import ServiceContext
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from services.registry import bootstrap
from services.registry.adapters.postgres.operations import SUBSCRIPTIONS_SQL
from services.registry.model import SubscriptionRecord
from services.registry.settings import RegistrySettings
from tests.fixtures.registry import (
    ingress_route,
    migrated_registry_pool,
    mirror_partner_key,
    registry_unit_of_work,
)
from tests.fixtures.signing import Crafted, craft
from tests.integration.audit.conftest import KEY

pytestmark = pytest.mark.asyncio

HORW = Municipality(bfs_number=1058, name="Horw", canton="LU")
HORW_OFFICE = "CH/MUN/1058/einwohnerdienste"
IDENTITY = "urn:ch:lu:hub:service:identity"
REGISTRY = "urn:ch:lu:hub:service:registry"
MOVE = "ch.lu.hub.relocation.move-reported.v1"
TODAY = "2026-12-01"
AGENCIES = (PORTAL, KRIENS_OFFICE, LUCERNE_OFFICE, EMMEN_OFFICE, TAX_OFFICE, HORW_OFFICE, OPERATIONS)


@dataclass
class Registry:
    """The registry's routes on one database, the master key they were built with, and a
    signing key for every agency."""

    pool: asyncpg.Pool
    master: MasterKey
    routes: dict[str, Route]
    keys: dict[str, SigningKey]
    offset: int = 0

    async def process(self, topic: str, crafted: Crafted) -> Outcome:
        self.offset += 1
        route = self.routes[topic]
        processor = MessageProcessor(
            self.pool, route, DeadLetterWriter(self.pool), source=REGISTRY, retry=RetryPolicy(0.01, 0.01)
        )
        return await processor.process(
            crafted.record(self.offset, topic=None if topic == topics.INGRESS else topic)
        )

    async def send(self, partner: str, data: Contract, case_id: str) -> tuple[Outcome, str]:
        crafted = craft(data, partner_id=partner, case_id=case_id, key=self.keys[partner])
        return await self.process(topics.INGRESS, crafted), crafted.event_id

    async def from_identity(
        self, data: Contract, topic: str, case_id: str, reference_id: str | None = None
    ) -> None:
        envelope = Envelope.new(data, source=IDENTITY, business_process_id=case_id, reference_id=reference_id)
        crafted = Crafted(envelope, tuple(envelope.to_headers()), serialize_data(data))
        assert await self.process(topic, crafted) is Outcome.PROCESSED

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            return [dict(row) for row in await conn.fetch(sql, *args)]

    async def value(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)


@pytest_asyncio.fixture
async def registry(
    hub_settings: HubSettings, vault_master_key: MasterKey, tmp_path: Path
) -> AsyncIterator[Registry]:
    pool = await migrated_registry_pool(hub_settings.database_dsn(), size=4)
    (tmp_path / "secrets").mkdir(exist_ok=True)
    (tmp_path / "secrets" / "audit.key").write_text(KEY.secret.hex())
    settings = hub_settings.model_copy(update={"state_dir": tmp_path, "audit_key_file": None})
    routes = list(bootstrap.routes(ServiceContext("registry", settings, pool, vault_master_key)))
    by_topic = {route.topic: route for route in routes}
    by_topic[topics.INGRESS] = ingress_route(routes)
    keys = {
        partner: await mirror_partner_key(pool, partner, f"parties-{n}") for n, partner in enumerate(AGENCIES)
    }
    yield Registry(pool, vault_master_key, by_topic, keys)
    await pool.close()


async def open_move(
    registry: Registry, departure: Municipality, arrival: Municipality, serial: int = 1
) -> str:
    """The portal reports the move; identity answers with a pseudonym per recipient it was asked for."""
    case_id = new_case_id()
    report = move_report(demo_person(serial), departure=departure, arrival=arrival)
    outcome, _ = await registry.send(PORTAL, report, case_id)
    assert outcome is Outcome.PROCESSED
    [request] = await registry.rows(
        "SELECT id, payload FROM outbox WHERE topic = $1 AND aggregateid = $2",
        topics.IDENTITY_REQUESTS,
        case_id,
    )
    asked = json.loads(bytes(request["payload"]))
    issued = PseudonymsIssued(
        match="new",
        pseudonyms=tuple(
            IssuedPseudonym(
                partner_id=r["partner_id"], sector=Sector(r["sector"]), pseudonym=f"{r['sector']}:p{n}"
            )
            for n, r in enumerate(asked["recipients"])
        ),
        citizen_id=f"citizen-services:c{serial}",
    )
    await registry.from_identity(issued, topics.IDENTITY_RESULTS, case_id, reference_id=str(request["id"]))
    return case_id


async def recipients_of(registry: Registry, case_id: str, event_type: str = MOVE) -> dict[str, str]:
    """Partner -> basis of every delivery of ``event_type`` the audit log recorded for the case."""
    rows = await registry.rows(
        "SELECT partner_id, basis FROM audit_log"
        " WHERE case_id = $1 AND event_type = $2 AND decision = 'delivered'",
        case_id,
        event_type,
    )
    return {row["partner_id"]: row["basis"] for row in rows}


async def delivery_topics(registry: Registry, case_id: str) -> set[str]:
    rows = await registry.rows(
        "SELECT DISTINCT topic FROM outbox WHERE aggregateid = $1 AND topic LIKE 'hub.delivery.%'", case_id
    )
    return {row["topic"] for row in rows}


async def footprint(registry: Registry, case_id: str) -> tuple[Any, ...]:
    """Everything a step on the case would change: status, milestones, timeline, outbox, audit."""
    return (
        await registry.value("SELECT status FROM cases WHERE case_id = $1", case_id),
        await registry.value("SELECT count(*) FROM case_milestones WHERE case_id = $1", case_id),
        await registry.value("SELECT count(*) FROM timeline WHERE case_id = $1", case_id),
        await registry.value(
            "SELECT count(*) FROM outbox WHERE aggregateid = $1 AND topic NOT LIKE '%-dlt'", case_id
        ),
        await registry.value(
            "SELECT count(*) FROM audit_log WHERE case_id = $1 AND decision <> 'refused'", case_id
        ),
    )


async def test_a_move_is_delivered_to_its_parties_only_and_says_on_what_basis(registry: Registry) -> None:
    case_id = await open_move(registry, EMMEN, LUCERNE)
    parties = await registry.rows(
        "SELECT slot, partner_id, jurisdiction_level, bfs_number, canton FROM case_parties "
        "WHERE case_id = $1 ORDER BY position",
        case_id,
    )
    assert [(p["slot"], p["partner_id"]) for p in parties] == [
        ("opener", PORTAL),
        ("departure-municipality", EMMEN_OFFICE),
        ("arrival-municipality", LUCERNE_OFFICE),
        ("arrival-tax-office", TAX_OFFICE),
    ]
    assert (parties[1]["jurisdiction_level"], parties[1]["bfs_number"], parties[1]["canton"]) == (
        "municipality",
        1024,
        "LU",
    )
    # Kriens, Zug and the Zug tax office hold the same subscriptions, and get nothing.
    assert await recipients_of(registry, case_id) == {
        EMMEN_OFFICE: "party: departure-municipality",
        LUCERNE_OFFICE: "party: arrival-municipality",
        TAX_OFFICE: "party: arrival-tax-office",
    }
    assert await delivery_topics(registry, case_id) == {
        delivery_topic(EMMEN_OFFICE),
        delivery_topic(LUCERNE_OFFICE),
        delivery_topic(TAX_OFFICE),
    }
    [request] = await registry.rows(
        "SELECT payload FROM outbox WHERE topic = $1 AND aggregateid = $2", topics.IDENTITY_REQUESTS, case_id
    )
    asked = {r["partner_id"] for r in json.loads(bytes(request["payload"]))["recipients"]}
    assert asked == {EMMEN_OFFICE, LUCERNE_OFFICE, TAX_OFFICE}  # no pseudonym for a non-party either


async def test_an_uninvolved_municipality_cannot_move_the_case(registry: Registry) -> None:
    case_id = await open_move(registry, EMMEN, LUCERNE)
    before = await footprint(registry, case_id)
    attempts = [
        (KRIENS_OFFICE, ArrivalRegistered(municipality=KRIENS, registered_on=TODAY)),
        (KRIENS_OFFICE, DepartureConfirmed(municipality=KRIENS, confirmed_on=TODAY)),
        (KRIENS_OFFICE, CaseRejected(rejected_by=KRIENS_OFFICE, reason="Nicht bei uns gemeldet.")),
        (KRIENS_OFFICE, CaseActionRequired(requested_by=KRIENS_OFFICE, action="Bitte melden Sie sich.")),
        # A party, but the other side of the move: Lucerne does not confirm Emmen's departure.
        (LUCERNE_OFFICE, DepartureConfirmed(municipality=LUCERNE, confirmed_on=TODAY)),
    ]
    refused = []
    for partner, data in attempts:
        outcome, event_id = await registry.send(partner, data, case_id)
        assert outcome is Outcome.DEAD_LETTERED, data
        refused.append(event_id)

    assert await footprint(registry, case_id) == before  # no step, no status, no notice, no delivery
    dead = await registry.rows("SELECT event_id, error_class, error_message FROM dead_letters ORDER BY id")
    assert [d["event_id"] for d in dead] == refused
    assert {d["error_class"] for d in dead} == {"NotAParty"}
    assert dead[0]["error_message"] == (
        f"{KRIENS_OFFICE} is not a party to this relocation case as arrival-municipality, "
        f"which {ArrivalRegistered.event_type} needs"
    )
    entries = await registry.rows(
        "SELECT event_id, partner_id, reason_class, sender_verified FROM audit_log WHERE decision = 'refused'"
    )
    assert [(e["event_id"], e["reason_class"], e["sender_verified"]) for e in entries] == [
        (event_id, "not-a-party", True) for event_id in refused
    ]
    assert LUCERNE_OFFICE not in dead[0]["error_message"]  # the refusal names no other party


async def test_the_parties_move_the_case_to_completion(registry: Registry) -> None:
    case_id = await open_move(registry, EMMEN, LUCERNE)
    steps = [
        (EMMEN_OFFICE, DepartureConfirmed(municipality=EMMEN, confirmed_on=TODAY)),
        (TAX_OFFICE, TaxRecordUpdated(updated_on=TODAY)),
        (LUCERNE_OFFICE, ArrivalRegistered(municipality=LUCERNE, registered_on=TODAY)),
    ]
    for partner, data in steps:
        assert (await registry.send(partner, data, case_id))[0] is Outcome.PROCESSED
    assert await registry.value("SELECT status FROM cases WHERE case_id = $1", case_id) == "completed"
    assert await recipients_of(registry, case_id, "ch.lu.hub.case.completed.v1") == {
        EMMEN_OFFICE: "party: departure-municipality",
        LUCERNE_OFFICE: "party: arrival-municipality",
        TAX_OFFICE: "party: arrival-tax-office",
    }


async def test_an_unfilled_slot_is_on_the_case_and_operations_are_told(registry: Registry) -> None:
    case_id = await open_move(registry, KRIENS, HORW)
    async with registry.pool.acquire() as conn:
        view = await load_case_view(conn, case_id, master=registry.master)
        slots = [s for s in await load_unfilled_slots(conn) if s.case_id == case_id]
        gauge = await bootstrap.metrics(conn)
    assert view is not None
    [missing] = [p for p in view.as_json()["parties"] if not p["filled"]]  # type: ignore[attr-defined]
    assert missing == {
        "slot": "arrival-municipality",
        "role": "municipality",
        "jurisdiction": "municipality 1058 (LU)",
        "partner_id": None,
        "unfilled_reason": "no active partner with role municipality for municipality 1058 (LU)",
        "partner_status": None,
        "filled": False,
    }
    assert view.as_json()["unfilled_slots"] == ["arrival-municipality"]
    assert "arrival-municipality" in view.as_text()
    assert "UNFILLED" in view.as_text()
    step = next(s for s in view.timeline if s.event_type == "party-unfilled")
    assert step.detail == (
        "nobody fills arrival-municipality (municipality, municipality 1058 (LU)): "
        "no active partner with role municipality for municipality 1058 (LU)"
    )
    assert [(s.party.slot, s.status) for s in slots] == [("arrival-municipality", "in-progress")]
    assert 'hub_case_unfilled_slots{service="registry"} 1' in gauge
    # Operations: the event on hub.ops, its delivery under the all-cases scope, a notice by mail.
    [ops_event] = await registry.rows(
        "SELECT payload FROM outbox WHERE topic = $1 AND aggregateid = $2", topics.OPS, case_id
    )
    assert json.loads(bytes(ops_event["payload"]))["slot"] == "arrival-municipality"
    assert await recipients_of(registry, case_id, "ch.lu.hub.case.party-missing.v1") == {
        OPERATIONS: "all-cases"
    }
    notices = await registry.rows(
        "SELECT payload FROM outbox WHERE topic = $1 AND aggregateid = $2",
        topics.NOTIFICATION_REQUESTS,
        case_id,
    )
    [sent] = [
        n for n in (json.loads(bytes(row["payload"])) for row in notices) if "party-missing" in n["template"]
    ]
    assert (sent["template"], sent["recipient"]) == ("case.party-missing", RegistrySettings().ops_email)
    assert sent["placeholders"]["slot"] == "arrival-municipality"
    # Kriens still got its move: the other slots are served.
    assert set(await recipients_of(registry, case_id)) == {KRIENS_OFFICE, TAX_OFFICE}


async def test_a_partner_registered_later_fills_the_slot_and_may_then_act(registry: Registry) -> None:
    case_id = await open_move(registry, KRIENS, HORW)
    horw = PartnerRegistered(
        partner_id=HORW_OFFICE,
        name="Gemeinde Horw, Einwohnerdienste",
        sector=Sector.RESIDENT_REGISTRATION,
        roles=("municipality",),
        jurisdiction=Jurisdiction(level="municipality", bfs_number=1058, canton="LU"),
        status="active",
    )
    await registry.from_identity(horw, topics.IDENTITY_PARTNERS, f"partner:{HORW_OFFICE}")
    assert (
        await registry.value(
            "SELECT partner_id FROM case_parties WHERE case_id = $1 AND slot = 'arrival-municipality'",
            case_id,
        )
        == HORW_OFFICE
    )
    async with registry.pool.acquire() as conn:
        view = await load_case_view(conn, case_id, master=registry.master)
        gauge = await bootstrap.metrics(conn)
    assert view is not None
    assert view.unfilled == ()
    filled = next(s for s in view.timeline if s.event_type == "party-filled")
    assert (filled.detail or "").startswith(
        f"arrival-municipality (municipality, municipality 1058 (LU)) filled by {HORW_OFFICE}"
    )
    assert 'hub_case_unfilled_slots{service="registry"} 0' in gauge
    registered = ArrivalRegistered(municipality=HORW, registered_on=TODAY)
    assert (await registry.send(HORW_OFFICE, registered, case_id))[0] is Outcome.PROCESSED
    assert (
        await registry.value(
            "SELECT partner_id FROM case_milestones WHERE case_id = $1 AND milestone = 'arrival-registered'",
            case_id,
        )
        == HORW_OFFICE
    )


async def test_a_subscription_must_say_all_cases_to_receive_cases_it_is_no_party_to(
    registry: Registry,
) -> None:
    statistics = "CH/CAN/LU/lustat"
    async with registry.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO partners (partner_id, name, sector, delivery_topic, roles, jurisdiction_level,"
            " canton) VALUES ($1, 'LUSTAT', 'statistics', $2, '{statistics}', 'canton', 'LU')",
            statistics,
            delivery_topic(statistics),
        )

    async def subscribe(scope: str) -> None:
        async with registry.pool.acquire() as conn, conn.transaction():
            await registry_unit_of_work(conn, registry.master).subscriptions.put(
                SubscriptionRecord(
                    partner_id=statistics,
                    event_type=MOVE,
                    case_type="relocation",
                    purpose="migration statistics",
                    legal_basis="StatG LU § 5",
                    legal_basis_url=None,
                    fields=("arrival", "move_date"),
                    retention_days=30,
                    status="approved",
                    scope=scope,
                )
            )

    await subscribe("party")
    first = await open_move(registry, KRIENS, LUCERNE, serial=2)
    assert statistics not in await recipients_of(registry, first)
    await subscribe("all-cases")
    second = await open_move(registry, KRIENS, LUCERNE, serial=3)
    assert (await recipients_of(registry, second))[statistics] == "all-cases"
    assert delivery_topic(statistics) in await delivery_topics(registry, second)


async def _unfilled_slots(registry: Registry, case_id: str) -> list[tuple[str, str | None]]:
    async with registry.pool.acquire() as conn:
        return [
            (s.party.slot, s.party.unfilled_reason)
            for s in await load_unfilled_slots(conn)
            if s.case_id == case_id
        ]


async def test_a_suspended_partner_leaves_its_slot_without_an_active_partner_until_reactivated(
    registry: Registry,
) -> None:
    case_id = await open_move(registry, KRIENS, LUCERNE)
    assert await _unfilled_slots(registry, case_id) == []
    suspended = PartnerStatusChanged(partner_id=LUCERNE_OFFICE, status="suspended", reason="audit")
    await registry.from_identity(suspended, topics.IDENTITY_PARTNERS, f"partner:{LUCERNE_OFFICE}")
    assert await _unfilled_slots(registry, case_id) == [
        ("arrival-municipality", f"{LUCERNE_OFFICE} is suspended")
    ]
    async with registry.pool.acquire() as conn:
        assert 'hub_case_unfilled_slots{service="registry"} 1' in await bootstrap.metrics(conn)
    # A new move to Lucerne meanwhile: nobody fills its arrival; reactivated, Lucerne takes it.
    second = await open_move(registry, KRIENS, LUCERNE, serial=4)
    assert await _unfilled_slots(registry, second) == [
        ("arrival-municipality", "no active partner with role municipality for municipality 1061 (LU)")
    ]
    active = PartnerStatusChanged(partner_id=LUCERNE_OFFICE, status="active")
    await registry.from_identity(active, topics.IDENTITY_PARTNERS, f"partner:{LUCERNE_OFFICE}")
    assert await _unfilled_slots(registry, case_id) == await _unfilled_slots(registry, second) == []
    assert (
        await registry.value(
            "SELECT partner_id FROM case_parties WHERE case_id = $1 AND slot = 'arrival-municipality'", second
        )
        == LUCERNE_OFFICE
    )


# --- each party under the subscriptions of its slot ---------------------------------------


async def disclosures(registry: Registry, case_id: str, partner: str) -> list[dict[str, Any]]:
    """The audit log's entries of the move's delivery to ``partner``, in chain order."""
    return await registry.rows(
        "SELECT delivery_event_id, purpose, legal_basis, basis, fields FROM audit_log"
        " WHERE case_id = $1 AND partner_id = $2 AND event_type = $3 AND decision = 'delivered' ORDER BY seq",
        case_id,
        partner,
        MOVE,
    )


async def moves_delivered(registry: Registry, case_id: str, partner: str) -> dict[str, dict[str, Any]]:
    """Event id -> delivery of every move the outbox holds for ``partner`` in the case."""
    rows = await registry.rows(
        "SELECT headers, payload FROM outbox WHERE aggregateid = $1 AND topic = $2",
        case_id,
        delivery_topic(partner),
    )
    found = {}
    for row in rows:
        delivery = json.loads(bytes(row["payload"]))
        if delivery["event_type_delivered"] == MOVE:
            found[dict(json.loads(row["headers"]))["ce_id"]] = delivery
    return found


def sections(fields: list[str]) -> set[str]:
    return {name.split(".")[0] for name in fields}


async def test_lucerne_receives_a_move_as_the_municipality_it_is_to_that_move(registry: Registry) -> None:
    """Departure of a move to Zug: recorded under RHG Art. 12 with where the person goes;
    arrival of a move from Kriens: registered under RHG Art. 11 with where they come from."""
    away = await open_move(registry, LUCERNE, ZUG, serial=5)
    [departure] = await disclosures(registry, away, LUCERNE_OFFICE)
    assert departure["purpose"] == "record the departure"
    assert departure["legal_basis"].startswith("RHG Art. 12")
    assert departure["basis"] == "party: departure-municipality"
    assert {"new_address", "arrival", "move_date", "person"} <= sections(departure["fields"])
    assert "previous_address" not in sections(departure["fields"])  # already in its own register
    [(event_id, delivered)] = (await moves_delivered(registry, away, LUCERNE_OFFICE)).items()
    assert departure["delivery_event_id"] == event_id
    assert delivered["purpose"] == departure["purpose"]
    assert delivered["legal_basis"] == departure["legal_basis"]
    assert "new_address" in delivered["data"]
    assert "previous_address" not in delivered["data"]

    home = await open_move(registry, KRIENS, LUCERNE, serial=6)
    [arrival] = await disclosures(registry, home, LUCERNE_OFFICE)
    assert arrival["purpose"] == "register the arrival"
    assert arrival["legal_basis"].startswith("RHG Art. 11")
    assert arrival["basis"] == "party: arrival-municipality"
    assert {"previous_address", "new_address", "departure", "move_date"} <= sections(arrival["fields"])
    [(event_id, delivered)] = (await moves_delivered(registry, home, LUCERNE_OFFICE)).items()
    assert arrival["delivery_event_id"] == event_id
    assert delivered["purpose"] == arrival["purpose"]
    assert delivered["legal_basis"] == arrival["legal_basis"]
    assert "previous_address" in delivered["data"]

    # The other parties of the move to Zug, each as what it is to it; Kriens, with the same
    # subscriptions as Lucerne, is none.
    [zug] = await disclosures(registry, away, ZUG_OFFICE)
    assert (zug["purpose"], zug["basis"]) == ("register the arrival", "party: arrival-municipality")
    [given_up] = await disclosures(registry, away, TAX_OFFICE)
    assert given_up["purpose"] == "give up the tax domicile"
    assert given_up["basis"] == "party: departure-tax-office"
    assert given_up["legal_basis"].startswith("StHG Art. 4b")
    assert "new_address" not in sections(given_up["fields"])
    [taken] = await disclosures(registry, away, ZUG_TAX_OFFICE)
    assert (taken["purpose"], taken["basis"]) == ("assign the tax domicile", "party: arrival-tax-office")
    assert await disclosures(registry, away, KRIENS_OFFICE) == []
    async with registry.pool.acquire() as conn:
        assert (await audit_store.verify(conn, KEY)).intact


async def test_a_municipality_on_both_sides_of_a_move_receives_it_once_under_both_subscriptions(
    registry: Registry,
) -> None:
    case_id = await open_move(registry, LUCERNE, LUCERNE, serial=7)
    [(event_id, delivered)] = (await moves_delivered(registry, case_id, LUCERNE_OFFICE)).items()
    assert delivered["purpose"] == "record the departure | register the arrival"
    assert delivered["legal_basis"].startswith("RHG Art. 12")
    assert " | RHG Art. 11" in delivered["legal_basis"]
    # The union of both subscriptions' fields: where the person goes, and where they come from.
    assert {"previous_address", "new_address", "departure", "arrival"} <= set(delivered["data"])
    departure, arrival = await disclosures(registry, case_id, LUCERNE_OFFICE)
    assert departure["delivery_event_id"] == arrival["delivery_event_id"] == event_id
    assert departure["purpose"] == "record the departure"
    assert departure["basis"] == "party: departure-municipality"
    assert arrival["purpose"] == "register the arrival"
    assert arrival["basis"] == "party: arrival-municipality"
    assert departure["legal_basis"].startswith("RHG Art. 12")
    assert arrival["legal_basis"].startswith("RHG Art. 11")
    # Each entry accounts for what its subscription grants; together, for all that went out.
    assert "previous_address" not in sections(departure["fields"])
    assert "previous_address" in sections(arrival["fields"])
    leaves = {f for f in departure["fields"] + arrival["fields"] if not f.startswith("person.")}
    assert sections(list(leaves)) == set(delivered["data"])
    async with registry.pool.acquire() as conn:
        found = await audit_store.disclosures(conn, case_id=case_id)
        assert (await audit_store.verify(conn, KEY)).intact
    mine = [s.entry for s in found if s.entry.partner_id == LUCERNE_OFFICE and s.entry.event_type == MOVE]
    assert [e.basis for e in mine] == ["party: departure-municipality", "party: arrival-municipality"]


async def test_an_operator_sets_a_subscription_for_one_slot_and_a_slot_the_case_type_lacks_is_refused(
    registry: Registry,
) -> None:
    """Operations (an operations partner, with its own key) give Kriens a subscription for its
    arrivals only; one naming a slot the relocation does not define is dead-lettered."""
    completed = "ch.lu.hub.case.completed.v1"

    def subscribe(slot: str) -> Crafted:
        command = SetSubscription(
            partner_id=KRIENS_OFFICE,
            subscribed_event_type=completed,
            case_type="relocation",
            purpose="welcome the new resident",
            legal_basis="RHG Art. 11",
            fields=("completed_at",),
            retention_days=30,
            status="approved",
            slot=slot,
        )
        key = registry.keys[OPERATIONS]
        return craft(command, partner_id=OPERATIONS, case_id="admin:subscriptions", key=key)

    assert await registry.process(topics.ADMIN, subscribe("arrival-municipality")) is Outcome.PROCESSED
    assert await registry.process(topics.ADMIN, subscribe("arrival-office")) is Outcome.DEAD_LETTERED
    [refused] = await registry.rows("SELECT error_class, error_message FROM dead_letters")
    assert refused["error_class"] == "UnknownSlot"
    assert "no party slot arrival-office" in refused["error_message"]
    listed = await registry.rows(SUBSCRIPTIONS_SQL)
    kriens = {
        r["slot"]: r for r in listed if r["partner_id"] == KRIENS_OFFICE and r["event_type"] == completed
    }
    assert set(kriens) == {"departure-municipality", "arrival-municipality"}
    assert kriens["arrival-municipality"]["purpose"] == "welcome the new resident"  # replaced
    assert kriens["departure-municipality"]["purpose"] == "close the departure file"  # untouched
