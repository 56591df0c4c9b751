"""`hub inbox`, `hub notifications` and `hub webhook` against a real database (HUB_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from contracts import Channel
from hub.cli.main import main
from hub.vault.crypto import MasterKey
from services.notifications.channels import ChannelAdapter, EmailChannel, InboxChannel
from services.notifications.dispatcher import Dispatcher
from services.notifications.domain import Preference
from services.notifications.email_sender import InMemoryEmailSender
from tests.integration.notifications.conftest import accept, incoming, migrated_pool, request, units

CITIZEN = "citizen-42"
PARTNER = "CH/MUN/1059/einwohnerdienste"


@pytest.fixture
def hub_env(
    database_url: str, vault_master_key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The commands find the database as they would with HUB_DATABASE_URL set (no `hub up`),
    and the master key this test's own handlers seal with (HUB_MASTER_KEY_FILE)."""
    monkeypatch.setenv("HUB_DATABASE_URL", database_url)
    monkeypatch.setenv("HUB_MASTER_KEY_FILE", str(vault_master_key_file))
    monkeypatch.setenv("HUB_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # unused by these commands
    monkeypatch.setenv("HUB_STATE_DIR", str(tmp_path))
    return database_url


def _hub(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_inbox_list_shows_a_citizens_delivered_messages(
    hub_env: str, vault_master_key: MasterKey, capsys: pytest.CaptureFixture[str]
) -> None:
    async def deliver_one() -> None:
        pool = await migrated_pool(hub_env)
        try:
            async with units(pool, vault_master_key).begin() as uow:
                await uow.preferences.prefer_channel(CITIZEN, Channel.INBOX)
            await accept(pool, vault_master_key, incoming(request("eumzug-9:received", citizen_id=CITIZEN)))
            channels: dict[Channel, ChannelAdapter] = {
                Channel.EMAIL: EmailChannel(InMemoryEmailSender(), from_address="noreply@hub.stadtluzern.ch"),
                Channel.INBOX: InboxChannel(units(pool, vault_master_key)),
            }
            await Dispatcher(units(pool, vault_master_key), channels).dispatch_due()
        finally:
            await pool.close()

    asyncio.run(deliver_one())
    [message] = json.loads(_hub(capsys, "inbox", "list", CITIZEN, "--json"))
    assert message["subject"] == "Ihre Umzugsmeldung eumzug-1 ist eingegangen"
    assert message["read_at"] is None
    assert "eumzug-1 ist eingegangen" in _hub(capsys, "inbox", "list", CITIZEN)
    assert json.loads(_hub(capsys, "inbox", "list", "nobody", "--json")) == []


def test_preference_and_opt_out_commands_are_stored(
    hub_env: str, vault_master_key: MasterKey, capsys: pytest.CaptureFixture[str]
) -> None:
    _hub(capsys, "notifications", "prefer", CITIZEN, "--channel", "sms")
    _hub(capsys, "notifications", "opt-out", CITIZEN)
    assert asyncio.run(_preference(hub_env, vault_master_key)) == Preference(Channel.SMS, opted_out=True)
    _hub(capsys, "notifications", "opt-in", CITIZEN)
    assert asyncio.run(_preference(hub_env, vault_master_key)) == Preference(Channel.SMS, opted_out=False)


async def _preference(database_url: str, master: MasterKey) -> Preference | None:
    pool = await migrated_pool(database_url)
    try:
        async with units(pool, master).begin() as uow:
            return await uow.preferences.preference_of(CITIZEN)
    finally:
        await pool.close()


def test_webhooks_are_added_from_a_secret_file_and_listed_without_it(
    hub_env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-s3cr3t-s3cr3t-s3cr3t\n")
    _hub(capsys, "webhook", "add", PARTNER, "https://kriens.example.ch/hub", "--secret-file", str(secret))
    _hub(capsys, "webhook", "add", PARTNER, "https://kriens.example.ch/hub/v2", "--secret-file", str(secret))
    [row] = json.loads(_hub(capsys, "webhook", "list", "--json"))
    assert row["partner_id"] == PARTNER
    assert row["url"] == "https://kriens.example.ch/hub/v2"  # added again: replaced
    assert row["topic"] == "hub.delivery.ch.mun.1059.einwohnerdienste"
    listing = _hub(capsys, "webhook", "list")
    assert PARTNER in listing
    assert "s3cr3t" not in listing + json.dumps(row)


@pytest.mark.parametrize(
    ("partner", "url", "secret", "complaint"),
    [
        ("not-a-partner", "https://x.example.ch", "long-enough-secret-123", "not a participant id"),
        (PARTNER, "ftp://x.example.ch", "long-enough-secret-123", "https://"),
        (PARTNER, "https://x.example.ch", "short", "at least 16 characters"),
    ],
)
def test_a_bad_webhook_is_refused_with_one_line(
    hub_env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    partner: str,
    url: str,
    secret: str,
    complaint: str,
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    assert main(["webhook", "add", partner, url, "--secret-file", str(secret_file)]) == 1
    error = capsys.readouterr().err
    assert complaint in error
    assert error.count("\n") == 1
    assert secret not in error
