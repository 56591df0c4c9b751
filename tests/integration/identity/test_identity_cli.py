"""`hub partner …`, `hub person reviews` and `hub identity rotate-key` against real infrastructure.

The commands find PostgreSQL and Kafka through HUB_* variables, as with an external hub.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from contracts import Envelope, Jurisdiction, Sector, parse_data
from contracts.admin import ChangePartnerStatus, RegisterPartner
from hub.cli.main import main
from hub.runtime import topics
from hub.runtime.kafka import ensure_topics
from hub.runtime.settings import HubSettings
from hub.vault.crypto import MasterKey
from tests.fixtures.infrastructure import point_cli_at
from tests.integration.identity.support import SEEDED, TAX_OFFICE, issue, migrated_pool, person

NEW_PARTNER = "CH/MUN/1062/einwohnerdienste"


@pytest.fixture
def hub_env(hub_settings: HubSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubSettings:
    point_cli_at(hub_settings, monkeypatch, tmp_path)
    return hub_settings


@pytest.fixture
def migrated(hub_env: HubSettings) -> HubSettings:
    """The identity tables exist, as after the identity service started once."""

    async def migrate() -> None:
        await (await migrated_pool(hub_env.database_dsn())).close()

    asyncio.run(migrate())
    return hub_env


def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 1
    return capsys.readouterr().err


def test_partner_list_shows_the_seeded_register(
    migrated: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = json.loads(_hub(capsys, "partner", "list", "--json"))
    assert {row["partner_id"] for row in rows} == SEEDED
    tax = next(row for row in rows if row["partner_id"] == TAX_OFFICE)
    assert (tax["member_class"], tax["member_code"], tax["subsystem"]) == ("CAN", "LU", "steuerverwaltung")
    assert (tax["sector"], tax["roles"], tax["status"]) == ("tax", ["tax-office"], "active")
    assert tax["jurisdiction"] == {"level": "canton", "canton": "LU"}
    zug = next(row for row in rows if row["partner_id"] == "CH/MUN/1711/einwohnerdienste")
    assert zug["jurisdiction"] == {"level": "municipality", "bfs_number": 1711, "canton": "ZG"}
    assert all(row["jurisdiction"] is not None for row in rows)  # every seeded partner can fill a slot
    text = _hub(capsys, "partner", "list")
    assert "CH/CAN/LU/ops  active  statistics  operations  canton LU  Hub operations" in text
    zug = "CH/MUN/1711/einwohnerdienste  active  resident-registration  municipality  municipality 1711 (ZG)"
    assert zug in text


def test_person_reviews_lists_open_reviews_by_id_only(
    migrated: HubSettings, vault_master_key: MasterKey, capsys: pytest.CaptureFixture[str]
) -> None:
    async def flag_a_look_alike() -> None:
        pool = await migrated_pool(migrated.database_dsn())
        try:
            await issue(pool, vault_master_key, person(1), (TAX_OFFICE, Sector.TAX))
            await issue(pool, vault_master_key, person(2), (TAX_OFFICE, Sector.TAX))
        finally:
            await pool.close()

    assert json.loads(_hub(capsys, "person", "reviews", "--json")) == []
    asyncio.run(flag_a_look_alike())
    output = _hub(capsys, "person", "reviews", "--json")
    [review] = json.loads(output)
    assert set(review) == {
        "id",
        "new_person_id",
        "candidate_person_id",
        "reason",
        "business_process_id",
        "created_at",
    }
    uuid.UUID(review["new_person_id"])
    for personal in (person(1).vn, person(2).vn, "Muster", "Anna"):
        assert personal not in output


def test_rotate_key_prints_the_new_version(migrated: HubSettings, capsys: pytest.CaptureFixture[str]) -> None:
    assert "tax: key version 2 is current" in _hub(capsys, "identity", "rotate-key", "tax")
    assert "tax: key version 3 is current" in _hub(capsys, "identity", "rotate-key", "tax")
    assert "building: key version 2 is current" in _hub(capsys, "identity", "rotate-key", "building")


async def _admin_records(settings: HubSettings) -> list[tuple[Envelope, bytes, bytes | None]]:
    consumer = AIOKafkaConsumer(
        topics.ADMIN,
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        group_id=f"inspect-{uuid.uuid4()}",
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
    finally:
        await consumer.stop()
    return [(Envelope.from_headers(r.headers), r.value or b"", r.key) for rs in batches.values() for r in rs]


def test_partner_commands_are_published_to_hub_admin(
    migrated: HubSettings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session's broker is shared with the end-to-end hubs, whose identity would obey
    # these commands (and suspend their tax office): this test gets its own admin topic.
    monkeypatch.setattr(topics, "ADMIN", f"hub.admin.test-{uuid.uuid4().hex[:12]}")
    asyncio.run(ensure_topics(migrated, [topics.ADMIN]))
    _hub(
        capsys,
        *("partner", "register", "--id", NEW_PARTNER, "--name", "Gemeinde Horw, Einwohnerdienste"),
        *("--sector", "resident-registration", "--role", "municipality", "--role", "portal"),
        *("--local-id-category", "CH.LU.1058", "--sedex-id", "1-1062-1"),
        *("--municipality", "1062", "--canton", "LU"),
    )
    sent = _hub(capsys, "partner", "suspend", TAX_OFFICE, "--reason", "audit")
    event_id = sent.split()[-1]
    records = {
        envelope.id: (envelope, value, key) for envelope, value, key in asyncio.run(_admin_records(migrated))
    }
    envelope, value, key = records[event_id]
    assert envelope.source == "urn:ch:lu:hub:admin:cli"
    assert (envelope.type, envelope.businessprocessid, key) == (
        ChangePartnerStatus.event_type,
        f"partner:{TAX_OFFICE}",
        TAX_OFFICE.encode(),
    )
    assert parse_data(envelope.type, value) == ChangePartnerStatus(
        partner_id=TAX_OFFICE, status="suspended", reason="audit"
    )
    registered = [
        parse_data(e.type, v) for e, v, _ in records.values() if e.type == RegisterPartner.event_type
    ]
    assert (
        RegisterPartner(
            partner_id=NEW_PARTNER,
            name="Gemeinde Horw, Einwohnerdienste",
            sector=Sector.RESIDENT_REGISTRATION,
            roles=("municipality", "portal"),
            jurisdiction=Jurisdiction(level="municipality", bfs_number=1062, canton="LU"),
            sedex_id="1-1062-1",
            local_person_id_category="CH.LU.1058",
        )
        in registered
    )


def test_status_change_of_an_unknown_partner_is_one_clear_line(
    migrated: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    error = _error(capsys, "partner", "activate", NEW_PARTNER)
    assert error == f"hub: error: no partner {NEW_PARTNER}; register it first\n"


def test_listing_before_identity_ever_ran_is_one_clear_line(
    hub_env: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    error = _error(capsys, "partner", "list")
    assert error.startswith("hub: error: the identity service has not created its tables")
    assert error.count("\n") == 1
