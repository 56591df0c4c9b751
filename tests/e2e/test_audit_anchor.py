"""The audit chain's head, anchored outside the database: cutting the chain's end and moving
its head back, consistently and with the triggers out of the way (what a database owner
can do), is found by `hub audit verify` without a manual anchor.

The registry publishes its head on hub.audit.heads (signed by the hub's key, through its
outbox); verify reads the furthest anchor it can prove and checks the chain against it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts import Envelope
from contracts.audit import AuditHeadAnchored
from contracts.catalog import serialize_data
from hub.audit.anchor import ANCHOR_KEY, latest_anchor
from hub.cli.main import main
from hub.local.demo import run_demo
from hub.runtime import topics
from hub.runtime.settings import HubSettings
from hub.security.key_files import hub_signing_key
from hub.security.signing import SigningKey
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory, {"HUB_AUDIT_ANCHOR_INTERVAL_S": "0.5"}) as settings:
        yield settings


@pytest.fixture
def operator(hub: HubSettings, monkeypatch: pytest.MonkeyPatch) -> HubSettings:
    for name in ("HUB_AUDIT_KEY_FILE", "HUB_SECRETS_DIR", "HUB_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HUB_DATABASE_URL", hub.database_dsn())
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP_SERVERS", hub.bootstrap_servers())
    monkeypatch.setenv("HUB_KAFKA_ENABLE_IDEMPOTENCE", "false")
    monkeypatch.setenv("HUB_STATE_DIR", str(hub.state_dir))
    return hub


def _verify(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str]:
    code = main(["audit", "verify", *options])
    return code, capsys.readouterr().out


async def _head(settings: HubSettings) -> tuple[int, str]:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        row = await conn.fetchrow("SELECT seq, entry_hash FROM registry.audit_head")
    finally:
        await conn.close()
    assert row is not None
    return int(row["seq"]), str(row["entry_hash"])


def _anchored(settings: HubSettings) -> AuditHeadAnchored | None:
    return asyncio.run(latest_anchor(settings, hub_signing_key(settings).public))


async def _cut_the_last_entry(settings: HubSettings) -> int:
    """What an owner of the database can do: remove the chain's last entry and move the head
    back onto the entry before, so that the chain in the database is consistent."""
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE registry.audit_log DISABLE TRIGGER USER")
            await conn.execute("ALTER TABLE registry.audit_head DISABLE TRIGGER USER")
            cut: int = await conn.fetchval(
                "DELETE FROM registry.audit_log"
                " WHERE seq = (SELECT max(seq) FROM registry.audit_log) RETURNING seq"
            )
            await conn.execute(
                "UPDATE registry.audit_head SET seq = $1,"
                " entry_hash = (SELECT entry_hash FROM registry.audit_log WHERE seq = $1)",
                cut - 1,
            )
            await conn.execute("ALTER TABLE registry.audit_log ENABLE TRIGGER USER")
            await conn.execute("ALTER TABLE registry.audit_head ENABLE TRIGGER USER")
        return cut
    finally:
        await conn.close()


def test_a_chain_cut_short_is_found_against_the_published_head(
    hub: HubSettings, operator: HubSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    view = asyncio.run(run_demo(hub, progress=lambda _line: None, timeout_s=90))
    assert view.status == "completed"
    head = asyncio.run(_head(hub))
    deadline = time.monotonic() + 30
    while (anchor := _anchored(hub)) is None or anchor.seq < head[0]:
        assert time.monotonic() < deadline, f"the head {head} was not published (latest: {anchor})"
        time.sleep(0.5)
    assert (anchor.seq, anchor.entry_hash) == head

    code, out = _verify(capsys)
    assert code == 0, out
    assert out.startswith(f"published anchor: entry {head[0]} at ")

    cut = asyncio.run(_cut_the_last_entry(hub))
    assert cut == head[0]
    # The database alone cannot tell: its chain is consistent, ending one entry earlier.
    code, out = _verify(capsys, "--no-published-anchor")
    assert (code, out.split(",")[0]) == (0, f"{head[0] - 1} entries")
    code, out = _verify(capsys)
    assert code == 1
    assert f"audit chain broken at entry {head[0]} (anchor)" in out


def test_an_anchor_the_hubs_key_did_not_sign_is_not_believed(hub: HubSettings) -> None:
    """Whoever can write the topic could plant a head; only the hub's key makes it count.
    Runs after the test above, whose genuine anchors are on the topic."""
    forged = AuditHeadAnchored(seq=10**6, entry_hash="0" * 64, anchored_at=dt.datetime.now(dt.UTC))
    envelope = Envelope.new(forged, source="urn:ch:lu:hub:service:registry", business_process_id=ANCHOR_KEY)
    value = serialize_data(forged)
    headers = SigningKey.generate(hub_signing_key(hub).key_id).sign_headers(envelope.to_headers(), value)

    async def plant() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=hub.bootstrap_servers())
        await producer.start()
        try:
            await producer.send_and_wait(topics.AUDIT_HEADS, value, key=ANCHOR_KEY.encode(), headers=headers)
        finally:
            await producer.stop()

    asyncio.run(plant())
    anchor = _anchored(hub)
    assert anchor is not None
    assert anchor.seq < 10**6
