"""Commands on hub.admin take effect only if a trusted operator (or an operations partner) signed them.

Records travel over the broker, on a hub.admin topic of this test's own (the session's broker
is shared with the end-to-end hubs, whose services read the real one), are read back and
handed to the real admin routes of identity and the registry (``bootstrap.routes``) and the
consumer's processor, record by record, against PostgreSQL. Every attack on a partner
registration, a status change, a key addition and a subscription (unsigned, signed with a
key no trusted operator holds, signed and changed afterwards) is dead-lettered with its
reason and changes nothing; the same commands sent by the ``hub`` CLI, which signs them
with the operator key the services trust, are applied.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from contracts import Envelope, Jurisdiction, Sector, SetSubscription, header_value
from contracts.admin import ChangePartnerStatus, RegisterPartner, RegisterPartnerKey
from contracts.channels import PARTNER_SOURCE_PREFIX
from contracts.identity import PartnerKeyRegistered
from hub.cli.main import main
from hub.local.demo import KRIENS_OFFICE, PORTAL, TAX_OFFICE
from hub.runtime import topics
from hub.runtime.consumer import MessageProcessor, Outcome, RetryPolicy
from hub.runtime.deadletter import DeadLetterWriter
from hub.runtime.kafka import ensure_topics
from hub.runtime.messages import Incoming
from hub.runtime.service import ServiceContext
from hub.runtime.settings import HubSettings
from hub.security.key_files import create_private_key, public_pem
from hub.security.operator_keys import ADMIN_CLI_SOURCE, operator_key_id, operator_signing_key
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from services.identity import bootstrap as identity_bootstrap
from services.registry import bootstrap as registry_bootstrap
from services.registry import partner_keys as registry_partner_keys
from tests.fixtures.infrastructure import point_cli_at
from tests.fixtures.registry import migrated_registry_pool, registry_unit_of_work
from tests.fixtures.signing import Crafted, send
from tests.integration.identity.support import migrated_pool

pytestmark = pytest.mark.asyncio
IDENTITY_GROUP = "hub.identity.admin"
REGISTRY_GROUP = "hub.registry.admin"
NEW_PARTNER = "CH/MUN/1062/einwohnerdienste"
OPS = "CH/CAN/LU/ops"
NEW_KEY = SigningKey.generate("portal-2026-admin-test")
ATTACKER_KEY = SigningKey.generate("attacker")
SUBSCRIBED_TYPE = "ch.lu.hub.case.escalated.v1"

REGISTER = RegisterPartner(
    partner_id=NEW_PARTNER,
    name="Gemeinde Horw, Einwohnerdienste",
    sector=Sector.RESIDENT_REGISTRATION,
    roles=("municipality", "portal"),
    jurisdiction=Jurisdiction(level="municipality", bfs_number=1058, canton="LU"),
)
SUSPEND = ChangePartnerStatus(partner_id=TAX_OFFICE, status="suspended", reason="audit")
ADD_KEY = RegisterPartnerKey(partner_id=PORTAL, key_id=NEW_KEY.key_id, public_key=NEW_KEY.public.base64)
SUBSCRIBE = SetSubscription(
    partner_id=KRIENS_OFFICE,
    subscribed_event_type=SUBSCRIBED_TYPE,
    purpose="follow up missed deadlines",
    legal_basis="Betriebsvereinbarung Hub (SLA)",
    retention_days=30,
    status="approved",
)
# For "signed, then changed": the bytes the operator signed, and what the record carries instead.
# Each change keeps the command valid, so only the signature can tell.
TAMPERED: dict[str, tuple[bytes, bytes]] = {
    "register": (b'"roles":["municipality","portal"]', b'"roles":["operations"]'),
    "suspend": (f'"partner_id":"{TAX_OFFICE}"'.encode(), f'"partner_id":"{PORTAL}"'.encode()),
    "add-key": (NEW_KEY.public.base64.encode(), ATTACKER_KEY.public.base64.encode()),
    "subscribe": (b'"retention_days":30', b'"retention_days":3650'),
}
AdminCommand = RegisterPartner | ChangePartnerStatus | RegisterPartnerKey | SetSubscription
COMMANDS: dict[str, AdminCommand] = {
    "register": REGISTER,
    "suspend": SUSPEND,
    "add-key": ADD_KEY,
    "subscribe": SUBSCRIBE,
}


@dataclass(frozen=True)
class Hub:
    """identity and the registry of one hub: their schemas, the master key their services
    load, and their hub.admin processors."""

    settings: HubSettings
    master: MasterKey
    identity: asyncpg.Pool
    registry: asyncpg.Pool
    topic: str

    def processors(self, settings: HubSettings | None = None) -> tuple[MessageProcessor, MessageProcessor]:
        """Both services' admin routes, as their composition roots build them from ``settings``."""
        settings = settings or self.settings
        return (
            _admin_processor(self.identity, identity_bootstrap.routes, settings, self.master, "identity"),
            _admin_processor(self.registry, registry_bootstrap.routes, settings, self.master, "registry"),
        )


def _admin_processor(
    pool: asyncpg.Pool,
    routes: Callable[[ServiceContext], Sequence[Any]],
    settings: HubSettings,
    master: MasterKey,
    name: str,
) -> MessageProcessor:
    [route] = [r for r in routes(ServiceContext(name, settings, pool, master)) if r.topic == topics.ADMIN]
    return MessageProcessor(
        pool,
        route,
        DeadLetterWriter(pool),
        source=f"urn:ch:lu:hub:service:{name}",
        retry=RetryPolicy(0.01, 0.01),
    )


@pytest_asyncio.fixture
async def hub(
    hub_settings: HubSettings, master_key: MasterKey, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Hub]:
    """identity's and the registry's schemas as their services prepare them at start."""
    topic = f"hub.admin.test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(topics, "ADMIN", topic)
    await ensure_topics(hub_settings, [topic])
    identity = await migrated_pool(database_url)
    registry = await migrated_registry_pool(database_url, size=4)
    yield Hub(hub_settings, master_key, identity, registry, topic)
    await identity.close()
    await registry.close()


def _stranger(folder: Path) -> SigningKey:
    """An operator key as ``hub`` would make one, but in no trusted set."""
    private_key = create_private_key(folder / "stranger.key")
    return SigningKey(operator_key_id(private_key.public_key()), private_key)


def _admin_record(
    command: AdminCommand,
    key: SigningKey | None,
    *,
    source: str = ADMIN_CLI_SOURCE,
    tamper: tuple[bytes, bytes] | None = None,
) -> Crafted:
    envelope = Envelope.new(command, source=source, business_process_id=f"partner:{command.partner_id}")
    value = command.model_dump_json().encode()
    headers = envelope.to_headers() if key is None else key.sign_headers(envelope.to_headers(), value)
    if tamper is not None:
        assert tamper[0] in value, value
        value = value.replace(*tamper)
    return Crafted(Envelope.from_headers(headers), tuple(headers), value)


async def _read_back(hub: Hub, event_ids: Sequence[str]) -> list[ConsumerRecord[bytes, bytes]]:
    """The records with these ids as the services' consumers receive them, in the order given."""
    consumer = AIOKafkaConsumer(
        hub.topic,
        bootstrap_servers=hub.settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        group_id=f"inspect-{uuid.uuid4()}",
        enable_auto_commit=False,
    )
    found: dict[str, ConsumerRecord[bytes, bytes]] = {}
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while not set(event_ids) <= set(found):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found |= {header_value(r.headers, "ce_id") or "": r for r in records}
    finally:
        await consumer.stop()
    return [found[event_id] for event_id in event_ids]


async def _process(hub: Hub, records: Sequence[ConsumerRecord[bytes, bytes]], **settings: Any) -> list[str]:
    """Each record through identity's and the registry's admin route, as both services read hub.admin.

    Returns, per record, the outcome of the service it is meant for; the other must skip it.
    """
    identity, registry = hub.processors(hub.settings.model_copy(update=settings) if settings else None)
    outcomes = []
    for record in records:
        for_registry = header_value(record.headers, "ce_type") == SetSubscription.event_type
        by_identity, by_registry = await identity.process(record), await registry.process(record)
        assert (by_registry if for_registry else by_identity) is not Outcome.SKIPPED
        assert (by_identity if for_registry else by_registry) is Outcome.SKIPPED
        outcomes.append((by_registry if for_registry else by_identity).value)
    return outcomes


async def _dead_letter(hub: Hub, event_id: str) -> tuple[str, str, str, str]:
    rows = []
    for pool in (hub.identity, hub.registry):
        async with pool.acquire() as conn:
            rows += await conn.fetch(
                "SELECT consumer, error_class, error_message, dead_letter_topic FROM dead_letters"
                " WHERE event_id = $1",
                event_id,
            )
    [row] = rows
    return row["consumer"], row["error_class"], row["error_message"], row["dead_letter_topic"]


@dataclass(frozen=True)
class State:
    """What the four commands would change."""

    new_partner: tuple[str, list[str]] | None
    tax_office: str
    portal_key: str | None
    subscription: tuple[str, int] | None


async def _state(hub: Hub) -> State:
    async with hub.identity.acquire() as conn:
        new = await conn.fetchrow("SELECT status, roles FROM partners WHERE partner_id = $1", NEW_PARTNER)
        tax = await conn.fetchval("SELECT status FROM partners WHERE partner_id = $1", TAX_OFFICE)
        key = await conn.fetchval("SELECT public_key FROM partner_keys WHERE key_id = $1", NEW_KEY.key_id)
    async with hub.registry.acquire() as conn:
        sub = await conn.fetchrow(
            "SELECT status, retention_days FROM subscriptions WHERE partner_id = $1 AND event_type = $2",
            KRIENS_OFFICE,
            SUBSCRIBED_TYPE,
        )
    return State(
        None if new is None else (new["status"], list(new["roles"])),
        tax,
        key,
        None if sub is None else (sub["status"], sub["retention_days"]),
    )


UNCHANGED = State(new_partner=None, tax_office="active", portal_key=None, subscription=None)
APPLIED = State(
    new_partner=("active", ["municipality", "portal"]),
    tax_office="suspended",
    portal_key=NEW_KEY.public.base64,
    subscription=("approved", 30),
)
# attack -> (the key it signs with, given the trusted operator key and a stranger's; tampered?;
#            the error class; a part of the reason)
Attack = Callable[[SigningKey, SigningKey], SigningKey | None]
ATTACKS: dict[str, tuple[Attack, bool, str, str]] = {
    "unsigned": (lambda operator, stranger: None, False, "UnsignedEvent", "is not signed by an operator"),
    "untrusted-key": (
        lambda operator, stranger: stranger,
        False,
        "UnknownSigningKey",
        "not a trusted operator key",
    ),
    "trusted-id-other-key": (
        lambda operator, stranger: SigningKey(operator.key_id, stranger.private_key),
        False,
        "BadSignature",
        "forged, or changed after signing",
    ),
    "tampered": (
        lambda operator, stranger: operator,
        True,
        "BadSignature",
        "forged, or changed after signing",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_an_admin_command_not_signed_by_a_trusted_operator_is_dead_lettered_and_changes_nothing(
    hub: Hub, tmp_path: Path, attack: str
) -> None:
    signer, tampered, error_class, reason = ATTACKS[attack]
    key = signer(operator_signing_key(hub.settings), _stranger(tmp_path))
    crafted = [
        _admin_record(command, key, tamper=TAMPERED[name] if tampered else None)
        for name, command in COMMANDS.items()
    ]
    await send(hub.settings.bootstrap_servers(), crafted, topic=hub.topic)
    records = await _read_back(hub, [c.event_id for c in crafted])
    assert await _process(hub, records) == ["dead-lettered"] * len(crafted)
    for name, record in zip(COMMANDS, crafted, strict=True):
        consumer, error, message, dlt = await _dead_letter(hub, record.event_id)
        assert consumer == (REGISTRY_GROUP if name == "subscribe" else IDENTITY_GROUP)
        assert error == error_class
        assert reason in message
        assert dlt == f"{hub.topic}-dlt"
    assert await _state(hub) == UNCHANGED


async def test_the_same_commands_sent_by_the_cli_are_signed_and_applied(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    point_cli_at(hub.settings, monkeypatch, tmp_path / "operator-shell")
    public_key_file = tmp_path / "portal.pub"
    public_key_file.write_text(public_pem(NEW_KEY.public.key))
    argv = [
        [
            *("partner", "register", "--id", NEW_PARTNER, "--name", "Gemeinde Horw, Einwohnerdienste"),
            *("--sector", "resident-registration", "--role", "municipality", "--role", "portal"),
            *("--municipality", "1058", "--canton", "LU"),
        ],
        ["partner", "suspend", TAX_OFFICE, "--reason", "audit"],
        ["partner", "key", "add", "--partner", PORTAL, "--key-id", NEW_KEY.key_id],
        ["subscription", "set", KRIENS_OFFICE, SUBSCRIBED_TYPE, "--status", "approved"],
    ]
    argv[2] += ["--public-key", str(public_key_file)]
    argv[3] += [
        "--purpose",
        SUBSCRIBE.purpose,
        "--legal-basis",
        SUBSCRIBE.legal_basis,
        "--retention-days",
        "30",
    ]
    event_ids = []
    for args in argv:
        # In a thread: the command runs its own event loop, as from an operator's shell.
        assert await asyncio.to_thread(main, args) == 0
        event_ids.append(capsys.readouterr().out.split()[-1])  # "sent <type> <id>"
    records = await _read_back(hub, event_ids)
    operator = operator_signing_key(hub.settings)
    assert {header_value(r.headers, "ce_sigkeyid") for r in records} == {operator.key_id}
    assert await _process(hub, records) == ["processed"] * len(records)
    assert await _state(hub) == APPLIED


async def test_with_signatures_optional_an_unsigned_command_is_applied_but_an_untrusted_one_is_not(
    hub: Hub, tmp_path: Path
) -> None:
    unsigned = [_admin_record(command, None) for command in COMMANDS.values()]
    untrusted = _admin_record(SUSPEND.model_copy(update={"reason": "again"}), _stranger(tmp_path))
    await send(hub.settings.bootstrap_servers(), [*unsigned, untrusted], topic=hub.topic)
    records = await _read_back(hub, [c.event_id for c in (*unsigned, untrusted)])
    outcomes = await _process(hub, records, require_signatures=False)
    assert outcomes == ["processed"] * len(unsigned) + ["dead-lettered"]
    assert (await _dead_letter(hub, untrusted.event_id))[1] == "UnknownSigningKey"
    assert await _state(hub) == APPLIED


async def _register_ops_key(hub: Hub, key: SigningKey) -> None:
    """The operations partner's key, as identity stores it and the registry mirrors it."""
    register = _admin_record(
        RegisterPartnerKey(partner_id=OPS, key_id=key.key_id, public_key=key.public.base64),
        operator_signing_key(hub.settings),
    )
    await send(hub.settings.bootstrap_servers(), [register], topic=hub.topic)
    assert await _process(hub, await _read_back(hub, [register.event_id])) == ["processed"]
    async with hub.identity.acquire() as conn:
        valid_from = await conn.fetchval("SELECT valid_from FROM partner_keys WHERE key_id = $1", key.key_id)
    mirrored = PartnerKeyRegistered(
        partner_id=OPS, key_id=key.key_id, public_key=key.public.base64, valid_from=valid_from
    )
    envelope = Envelope.new(
        mirrored, source="urn:ch:lu:hub:service:identity", business_process_id=f"partner:{OPS}"
    )
    msg: Incoming[Any] = Incoming(envelope, mirrored, topics.IDENTITY_PARTNERS, 0, 0, "0" * 32)
    async with hub.registry.acquire() as conn, conn.transaction():
        await registry_partner_keys.mirror_key_registered(msg, registry_unit_of_work(conn, hub.master))


async def test_an_operations_partner_signs_with_its_own_registered_key(hub: Hub) -> None:
    """Partners with the operations role administer too, proven by their own key, not an operator's."""
    ops_key = SigningKey.generate("ops-2026")
    await _register_ops_key(hub, ops_key)
    ops = PARTNER_SOURCE_PREFIX + OPS
    unsigned = [_admin_record(command, None, source=ops) for command in COMMANDS.values()]
    with_operator_key = [
        _admin_record(command, operator_signing_key(hub.settings), source=ops)
        for command in COMMANDS.values()
    ]
    signed = [_admin_record(command, ops_key, source=ops) for command in COMMANDS.values()]
    crafted = [*unsigned, *with_operator_key, *signed]
    await send(hub.settings.bootstrap_servers(), crafted, topic=hub.topic)
    records = await _read_back(hub, [c.event_id for c in crafted])
    outcomes = await _process(hub, records)
    assert outcomes == ["dead-lettered"] * 8 + ["processed"] * 4
    assert {(await _dead_letter(hub, c.event_id))[1] for c in unsigned} == {"UnsignedEvent"}
    # An operator's key is no partner key: a partner cannot borrow it.
    assert {(await _dead_letter(hub, c.event_id))[1] for c in with_operator_key} == {"UnknownSigningKey"}
    assert await _state(hub) == APPLIED


async def test_a_partner_without_the_operations_role_is_refused_before_its_signature_is_looked_at(
    hub: Hub,
) -> None:
    kriens = PARTNER_SOURCE_PREFIX + KRIENS_OFFICE
    crafted = [_admin_record(command, None, source=kriens) for command in COMMANDS.values()]
    await send(hub.settings.bootstrap_servers(), crafted, topic=hub.topic)
    assert await _process(hub, await _read_back(hub, [c.event_id for c in crafted])) == ["dead-lettered"] * 4
    for record in crafted:
        assert (await _dead_letter(hub, record.event_id))[1] == "NotAuthorized"
    assert await _state(hub) == UNCHANGED
