"""A dead letter of a partner's ingress topic lies in the one hub.ingress-dlt, and a redrive
puts it back on that partner's topic, not on the shared hub.ingress (which may be unread).

The runtime's dead-letter writer and ``hub dlq redrive`` (through the argparse CLI, as an
operator runs it) on real PostgreSQL; the redrive is an outbox row, which is what the
service's relay publishes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contracts import KRIENS, DepartureConfirmed, Envelope
from hub.cli import main as cli
from hub.errors import UnknownCase
from hub.runtime import topics
from hub.runtime.consumer import MessageProcessor, Outcome, RetryPolicy, Route
from hub.runtime.db import create_pool
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.messages import Incoming
from hub.runtime.migrations import apply_migrations, load_migrations
from hub.runtime.outbox import Transaction
from hub.runtime.settings import HubSettings
from tests.fixtures.records import consumer_record

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def registry(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A schema named like the registry, with the runtime's tables (outbox, dead letters)."""
    pool = await create_pool(database_url, "registry", size=3)
    async with pool.acquire() as conn:
        await apply_migrations(conn, load_migrations("hub-runtime", "hub.runtime.sql"))
    yield pool
    await pool.close()


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, hub_settings: HubSettings, tmp_path: Path) -> None:
    assert hub_settings.database_url is not None
    monkeypatch.setenv("HUB_DATABASE_URL", hub_settings.database_url.get_secret_value())
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP_SERVERS", hub_settings.bootstrap_servers())
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))


async def _unknown_case(msg: Incoming[Any], tx: Transaction) -> None:
    raise UnknownCase(f"no case {msg.case_id} (yet)")


async def test_a_dead_letter_of_a_partner_ingress_topic_is_redriven_to_that_topic(
    registry: asyncpg.Pool, operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    partner = f"CH/MUN/1059/redrive-{uuid.uuid4().hex[:6]}"
    own_topic = topics.ingress_topic(partner)
    data = DepartureConfirmed(municipality=KRIENS, confirmed_on="2026-12-01")  # type: ignore[arg-type]
    envelope = Envelope.new(data, source=f"urn:ch:lu:hub:partner:{partner}", business_process_id="case-9")
    record = consumer_record(
        data.model_dump_json().encode(), envelope.to_headers(), topic=own_topic, offset=3
    )
    route = Route(
        topics.INGRESS,
        "hub.registry.ingress",
        {DepartureConfirmed.event_type: _unknown_case},
        pattern=topics.ingress_pattern(shared=False),
    )
    processor = MessageProcessor(
        registry, route, DeadLetterWriter(registry), source="urn:test", retry=RetryPolicy()
    )
    assert await processor.process(record) is Outcome.DEAD_LETTERED
    async with registry.acquire() as conn:
        letter = await conn.fetchrow("SELECT id, topic, dead_letter_topic FROM dead_letters")
        assert letter is not None
        assert (letter["topic"], letter["dead_letter_topic"]) == (own_topic, "hub.ingress-dlt")
        assert await conn.fetchval("SELECT topic FROM outbox") == "hub.ingress-dlt"

    capsys.readouterr()
    code = await asyncio.to_thread(
        cli.main, ["dlq", "redrive", "--service", "registry", "--id", str(letter["id"])]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"-> {own_topic} (ce_id {envelope.id})" in out.splitlines()[0]
    async with registry.acquire() as conn:
        redriven = await conn.fetch("SELECT topic FROM outbox WHERE topic <> 'hub.ingress-dlt'")
    assert [row["topic"] for row in redriven] == [own_topic]
