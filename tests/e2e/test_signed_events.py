"""Signed events and replay protection with the services as processes.

One run against a running hub: the attacks (unsigned, forged, tampered, replayed under a
new id and with a stale time, from the future, unknown key, another partner's key,
expired and revoked keys registered through `hub partner key`, wrong role) go to the
ingress topic of the partner they claim, next to a genuine relocation case, whose partners
sign everything and verify
every delivery. Each attack is dead-lettered with its reason and recorded, is sealed into
the audit chain as a refusal (the claimed partner, whether its signature held, the reason),
and opens nothing; `hub audit verify` passes afterwards; the genuine case completes; a
genuine event sent twice is processed once; every delivery carries the hub's signature,
and a partner refuses one that does not. A partner's own client (``plain_partner``: plain
aiokafka and cryptography, nothing of the hub) registers its key through the CLI, reports
moves with a JavaScript-style ``ce_time`` and with an offset and no optional attributes,
which open their cases, and verifies the hub's deliveries with its own code.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import contextlib
import datetime as dt
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from contracts import Envelope, header_value
from hub.cli.casefile import CaseView
from hub.cli.main import main
from hub.local.demo import KRIENS_OFFICE, PORTAL, TAX_OFFICE, demo_person, move_report, new_case_id, run_demo
from hub.local.partner_client import RefusedDelivery
from hub.local.provisioning import local_keyring, local_partner
from hub.runtime import topics
from hub.runtime.deadletter import dead_letter_topic
from hub.runtime.kafka import ensure_topics
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from hub.security.key_files import public_pem
from hub.security.signing import BadSignature, MisroutedRecord, PublicKey, SigningKey, UnsignedEvent
from tests.e2e import plain_partner
from tests.e2e.conftest import running_hub
from tests.fixtures.infrastructure import Infrastructure
from tests.fixtures.signing import Crafted, craft, send

GROUP = "hub.registry.ingress"
EXPIRED_KEY = "portal-e2e-expired"
REVOKED_KEY = "portal-e2e-revoked"
PLAIN_KEY = "portal-e2e-plain-client"


@dataclass(frozen=True)
class Expected:
    error_class: str
    reason: str
    # The audit chain's refusal entry: its class, and whether the claimed sender's
    # signature held (the time window and the role are checked only after it).
    reason_class: str = "signature"
    sender_verified: bool = False
    partner: str = PORTAL


EXPECTED = {
    "unsigned": Expected("UnsignedEvent", "is not signed"),
    "forged": Expected("BadSignature", "forged, or changed after signing"),
    "tampered-value": Expected("BadSignature", "forged, or changed after signing"),
    "tampered-attribute": Expected("BadSignature", "forged, or changed after signing"),
    "replayed-under-new-id": Expected("BadSignature", "forged, or changed after signing"),
    "replayed-stale-time": Expected("StaleEvent", "s old; at most 21600s accepted", "replay-window", True),
    "future-time": Expected(
        "FutureEvent", "in the future; at most 300s of clock skew accepted", "replay-window", True
    ),
    "unknown-key": Expected("UnknownSigningKey", "names unknown key"),
    "another-partners-key": Expected("ForeignSigningKey", f"belongs to {KRIENS_OFFICE}, not to the sender"),
    "expired-key": Expected("KeyOutsideValidity", f"key {EXPIRED_KEY} of {PORTAL} expired at 2025-01-01"),
    "revoked-key": Expected("RevokedSigningKey", f"key {REVOKED_KEY} of {PORTAL} was revoked at"),
    "wrong-role": Expected(
        "NotAuthorized",
        f"{TAX_OFFICE} (roles tax-office) may not publish",
        "not-authorized",
        True,
        TAX_OFFICE,
    ),
}


@dataclass(frozen=True)
class Run:
    attacks: dict[str, Crafted]
    replayed: Crafted
    case: CaseView
    dead_letters: dict[str, list[dict[str, Any]]]  # event id -> registry.dead_letters rows
    dlt_messages: dict[str, list[str]]  # event id -> dlt-exception-message of hub.ingress-dlt records
    cases: set[str]  # case ids of this run the registry holds
    opened: dict[str, int]  # case id -> case-opened steps
    inbox: dict[str, int]  # event id -> registry inbox rows of the ingress consumer
    keys_listed: list[dict[str, Any]]
    refusals: dict[str, list[dict[str, Any]]]  # event id -> registry.audit_log 'refused' entries


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory) as settings:
        yield settings


@contextlib.contextmanager
def _cli_environment(hub: HubSettings) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HUB_DATABASE_URL", hub.database_dsn())
        patch.setenv("HUB_KAFKA_BOOTSTRAP_SERVERS", hub.bootstrap_servers())
        patch.setenv("HUB_KAFKA_ENABLE_IDEMPOTENCE", str(hub.kafka_enable_idempotence).lower())
        patch.setenv("HUB_STATE_DIR", str(hub.state_dir))
        yield


def _hub_cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0, args
    return out.getvalue()


def _keys_from_cli(hub: HubSettings, folder: Path) -> tuple[SigningKey, SigningKey, list[dict[str, Any]]]:
    """An expired and a revoked key of the portal, registered as an operator does it."""
    expired, revoked = SigningKey.generate(EXPIRED_KEY), SigningKey.generate(REVOKED_KEY)
    for key in (expired, revoked):
        (folder / f"{key.key_id}.pub").write_text(public_pem(key.public.key))
    with _cli_environment(hub):
        _hub_cli(
            *("partner", "key", "add", "--partner", PORTAL, "--key-id", EXPIRED_KEY),
            *("--public-key", str(folder / f"{EXPIRED_KEY}.pub")),
            *("--valid-from", "2024-01-01T00:00:00+01:00", "--valid-until", "2025-01-01T00:00:00Z"),
        )
        _hub_cli(
            *("partner", "key", "add", "--partner", PORTAL, "--key-id", REVOKED_KEY),
            *("--public-key", str(folder / f"{REVOKED_KEY}.pub")),
        )
        asyncio.run(
            _until(hub, "SELECT count(*) FROM registry.partner_keys WHERE key_id = $1", 1, REVOKED_KEY)
        )
        _hub_cli(
            "partner", "key", "revoke", "--partner", PORTAL, "--key-id", REVOKED_KEY, "--reason", "leaked"
        )
        asyncio.run(
            _until(
                hub,
                "SELECT count(*) FROM registry.partner_keys WHERE key_id = $1 AND revoked_at IS NOT NULL",
                1,
                REVOKED_KEY,
            )
        )
        listed = json.loads(_hub_cli("partner", "key", "list", "--partner", PORTAL, "--json"))
    return expired, revoked, listed


def _attacks(hub: HubSettings, expired: SigningKey, revoked: SigningKey) -> dict[str, Crafted]:
    keyring = local_keyring(hub)
    portal, kriens, tax = (keyring.signing_key(p) for p in (PORTAL, KRIENS_OFFICE, TAX_OFFICE))
    # Provisioned by the supervisor.
    assert portal is not None
    assert kriens is not None
    assert tax is not None

    def move(key: SigningKey | None, partner: str = PORTAL, **options: Any) -> Crafted:
        return craft(
            move_report(demo_person(40)), partner_id=partner, case_id=new_case_id(), key=key, **options
        )

    tampered = move(portal)
    now = dt.datetime.now(dt.UTC)
    return {
        "unsigned": move(None),
        "forged": move(SigningKey.generate(portal.key_id)),
        "tampered-value": tampered.with_value(
            tampered.value.replace(b"Hertensteinstrasse", b"Bahnhofstrasse")
        ),
        "tampered-attribute": move(portal).with_header("ce_subject", "resident-registration:someone-else"),
        "replayed-under-new-id": move(portal).with_header("ce_id", str(uuid.uuid4())),
        "replayed-stale-time": move(portal, time=now - dt.timedelta(hours=7)),
        "future-time": move(portal, time=now + dt.timedelta(minutes=10)),
        "unknown-key": move(SigningKey.generate(f"portal-{uuid.uuid4().hex[:8]}")),
        "another-partners-key": move(kriens),
        "expired-key": move(expired),
        "revoked-key": move(revoked),
        "wrong-role": move(tax, partner=TAX_OFFICE),
    }


@pytest.fixture(scope="module")
def run(hub: HubSettings, tmp_path_factory: pytest.TempPathFactory) -> Run:
    expired, revoked, listed = _keys_from_cli(hub, tmp_path_factory.mktemp("keys"))
    attacks = _attacks(hub, expired, revoked)
    portal = local_keyring(hub).signing_key(PORTAL)
    replayed = craft(move_report(demo_person(41)), partner_id=PORTAL, case_id=new_case_id(), key=portal)
    # After the replayed copy, on its partition (same key): once this is dead-lettered, the
    # copy before it has been handled too.
    marker = craft(
        move_report(demo_person(42)),
        partner_id=PORTAL,
        case_id=replayed.envelope.businessprocessid,
        key=portal,
        time=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    asyncio.run(send(hub.bootstrap_servers(), [*attacks.values(), replayed, replayed, marker]))
    case = asyncio.run(run_demo(hub, progress=lambda _line: None, timeout_s=90))
    event_ids = [c.event_id for c in (*attacks.values(), marker)]
    asyncio.run(
        _until(
            hub,
            "SELECT count(DISTINCT event_id) FROM registry.dead_letters WHERE event_id = ANY($1)",
            len(event_ids),
            event_ids,
        )
    )
    return asyncio.run(_collect(hub, attacks, replayed, case, listed))


async def _collect(
    hub: HubSettings,
    attacks: dict[str, Crafted],
    replayed: Crafted,
    case: CaseView,
    listed: list[dict[str, Any]],
) -> Run:
    crafted = [*attacks.values(), replayed]
    event_ids = [c.event_id for c in crafted]
    case_ids = [c.envelope.businessprocessid for c in crafted]
    conn = await asyncpg.connect(hub.database_dsn())
    try:
        rows = await conn.fetch(
            "SELECT event_id, consumer, error_class, error_message, dead_letter_topic"
            " FROM registry.dead_letters WHERE event_id = ANY($1)",
            event_ids,
        )
        cases = await conn.fetch("SELECT case_id FROM registry.cases WHERE case_id = ANY($1)", case_ids)
        opened = await conn.fetch(
            "SELECT case_id, count(*) AS n FROM registry.timeline"
            " WHERE event_type = 'case-opened' AND case_id = ANY($1) GROUP BY case_id",
            case_ids,
        )
        inbox = await conn.fetch(
            "SELECT event_key FROM registry.inbox WHERE consumer = $1 AND event_key = ANY($2)",
            GROUP,
            [f"{c.envelope.source} {c.event_id}" for c in crafted],
        )
        audited = await conn.fetch(
            "SELECT * FROM registry.audit_log WHERE decision = 'refused' AND event_id = ANY($1)", event_ids
        )
    finally:
        await conn.close()
    dead_letters: dict[str, list[dict[str, Any]]] = {event_id: [] for event_id in event_ids}
    for row in rows:
        dead_letters[row["event_id"]].append(dict(row))
    refusals: dict[str, list[dict[str, Any]]] = {event_id: [] for event_id in event_ids}
    for row in audited:
        refusals[row["event_id"]].append(dict(row))
    dlt_messages: dict[str, list[str]] = {event_id: [] for event_id in event_ids}
    for record in await _records(hub, dead_letter_topic(topics.INGRESS)):
        event_id = header_value(record.headers, "ce_id")
        if event_id in dlt_messages:
            dlt_messages[event_id].append(header_value(record.headers, "dlt-exception-message") or "")
    return Run(
        attacks=attacks,
        replayed=replayed,
        case=case,
        dead_letters=dead_letters,
        dlt_messages=dlt_messages,
        cases={row["case_id"] for row in cases},
        opened={row["case_id"]: row["n"] for row in opened},
        inbox={key.split(" ")[-1]: 1 for key in (row["event_key"] for row in inbox)},
        keys_listed=listed,
        refusals=refusals,
    )


async def _until(
    settings: HubSettings, sql: str, wanted: object, *args: object, timeout_s: float = 90
) -> None:
    conn = await asyncpg.connect(settings.database_dsn())
    value = None
    try:
        async with asyncio.timeout(timeout_s):
            while (value := await conn.fetchval(sql, *args)) != wanted:
                await asyncio.sleep(0.3)
    except TimeoutError:
        raise AssertionError(f"waited for {wanted!r}, last saw {value!r}: {sql}") from None
    finally:
        await conn.close()


async def _records(settings: HubSettings, topic: str, *, seconds: float = 4) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers(),
        auto_offset_reset="earliest",
        group_id=f"inspect-{uuid.uuid4()}",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += batch
    finally:
        await consumer.stop()
    return records


@pytest.mark.parametrize("attack", list(EXPECTED))
def test_an_attack_is_refused_dead_lettered_with_its_reason_and_never_routed(run: Run, attack: str) -> None:
    crafted, expected = run.attacks[attack], EXPECTED[attack]
    [row] = run.dead_letters[crafted.event_id]
    assert (row["consumer"], row["error_class"]) == (GROUP, expected.error_class)
    assert expected.reason in row["error_message"]
    assert row["dead_letter_topic"] == "hub.ingress-dlt"
    [message] = run.dlt_messages[crafted.event_id]  # published once to the dead-letter topic
    assert expected.reason in message
    assert crafted.envelope.businessprocessid not in run.cases
    assert crafted.event_id not in run.inbox  # nothing of it was processed


@pytest.mark.parametrize("attack", list(EXPECTED))
def test_an_attack_is_sealed_into_the_audit_chain_as_a_refusal(run: Run, attack: str) -> None:
    crafted, expected = run.attacks[attack], EXPECTED[attack]
    [entry] = run.refusals[crafted.event_id]  # once, in the transaction of its dead letter
    assert entry["reason"].startswith(f"{expected.error_class}: ")
    assert expected.reason in entry["reason"]
    assert (entry["reason_class"], entry["sender_verified"]) == (
        expected.reason_class,
        expected.sender_verified,
    )
    assert entry["partner_id"] == expected.partner  # as claimed by ce_source
    assert (entry["event_type"], entry["case_id"]) == (
        crafted.envelope.type,
        crafted.envelope.businessprocessid,
    )
    # A refusal names no person and discloses nothing.
    assert (entry["person_pseudonym"], entry["citizen_id"], entry["fields"]) == (None, None, [])


def test_the_audit_chain_with_the_refusals_verifies_and_lists_them(hub: HubSettings, run: Run) -> None:
    with _cli_environment(hub):
        verdict = json.loads(_hub_cli("audit", "verify", "--json"))
        listed = json.loads(_hub_cli("audit", "refusals", "--partner", PORTAL, "--limit", "1000", "--json"))
    assert verdict["intact"] is True
    assert verdict["entries"] >= len(run.attacks) + 6  # the refusals and the genuine case's deliveries
    portal_attacks = {c.event_id for name, c in run.attacks.items() if EXPECTED[name].partner == PORTAL}
    assert portal_attacks <= {r["event_id"] for r in listed}
    assert {r["partner_id"] for r in listed} == {PORTAL}


def test_the_genuine_case_of_the_same_run_completes(run: Run) -> None:
    assert run.case.status == "completed"
    partners = {step.service for step in run.case.timeline}
    assert {PORTAL, KRIENS_OFFICE, TAX_OFFICE} <= partners  # every partner's signed answer was accepted


def test_a_signed_event_sent_twice_is_processed_once(run: Run) -> None:
    case_id = run.replayed.envelope.businessprocessid
    assert case_id in run.cases
    assert run.opened[case_id] == 1
    assert run.inbox[run.replayed.event_id] == 1
    assert run.dead_letters[run.replayed.event_id] == []  # dropped as a duplicate, not refused
    assert run.refusals[run.replayed.event_id] == []


def test_keys_are_listed_with_their_state(hub: HubSettings, run: Run) -> None:
    by_id = {row["key_id"]: row for row in run.keys_listed}
    assert by_id[EXPIRED_KEY]["valid_until"].startswith("2025-01-01 00:00:00")
    assert by_id[REVOKED_KEY]["revoked_at"] is not None
    assert by_id[REVOKED_KEY]["revocation_reason"] == "leaked"
    demo_key = local_keyring(hub).signing_key(PORTAL)
    assert demo_key is not None
    assert by_id[demo_key.key_id]["revoked_at"] is None  # the supervisor's key for the portal


def _hub_key(hub: HubSettings) -> PublicKey:
    with _cli_environment(hub):
        shown = json.loads(_hub_cli("keys", "show", "--json"))
    return PublicKey.from_base64(shown["key_id"], shown["public_key"])


def test_every_delivery_carries_the_hubs_signature(hub: HubSettings, run: Run) -> None:
    hub_key = _hub_key(hub)
    records = [
        r
        for r in asyncio.run(_records(hub, delivery_topic(KRIENS_OFFICE)))
        if r.key == run.case.case_id.encode()
    ]
    assert len(records) >= 2  # the move and the completion
    for record in records:
        envelope = Envelope.from_headers(record.headers)
        assert envelope.sigkeyid == hub_key.key_id
        hub_key.verify(record.headers, record.value)


async def _copy_to(settings: HubSettings, topic: str, records: list[tuple[list[Any], bytes, bytes]]) -> None:
    await ensure_topics(settings, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all")
    await producer.start()
    try:
        for headers, value, key in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


class _AllRefused(Exception):
    pass


def _refusals(settings: HubSettings, partner_id: str, expected: int) -> list[RefusedDelivery]:
    """Read ``partner_id``'s topic until ``expected`` deliveries were refused; none may be taken."""
    refused: list[RefusedDelivery] = []

    def note(refusal: RefusedDelivery) -> None:
        refused.append(refusal)
        if len(refused) == expected:
            raise _AllRefused

    try:
        taken = asyncio.run(_first(settings, partner_id, 1, note))
    except _AllRefused:
        return refused
    raise AssertionError(f"{partner_id} accepted {taken} after {len(refused)} refusal(s)")


async def _first(
    settings: HubSettings, partner_id: str, take: int, on_refused: Callable[[RefusedDelivery], None] | None
) -> list[Envelope]:
    client = local_partner(settings, partner_id)
    await client.start()
    taken: list[Envelope] = []
    try:
        async with asyncio.timeout(60):
            async for delivery in client.deliveries(on_refused=on_refused):
                taken.append(delivery.envelope)
                if len(taken) == take:
                    break
    finally:
        await client.stop()
    return taken


def test_a_partner_refuses_deliveries_the_hub_did_not_sign(hub: HubSettings, run: Run) -> None:
    """Someone with write access to a partner's topic forges deliveries: the partner notices."""
    [genuine] = [
        r
        for r in asyncio.run(_records(hub, delivery_topic(KRIENS_OFFICE)))
        if r.key == run.case.case_id.encode() and b"sector_pseudonym" in r.value
    ]
    headers, value, key = list(genuine.headers), genuine.value, run.case.case_id.encode()
    tampered = value.replace(b"Hertensteinstrasse", b"Bahnhofstrasse")
    unsigned = [(n, v) for n, v in headers if n not in ("ce_sigkeyid", "ce_signature")]
    assert tampered != value

    # Told of refusals: every forgery is refused and skipped, the loop goes on.
    lenient = f"CH/CAN/LU/sigtest-{uuid.uuid4().hex[:8]}"
    asyncio.run(_copy_to(hub, delivery_topic(lenient), [(headers, tampered, key), (unsigned, value, key)]))
    refused = _refusals(hub, lenient, 2)
    assert [type(r.error) for r in refused] == [BadSignature, UnsignedEvent]

    # Not told: the first forgery stops the partner's loop with the reason.
    strict = f"CH/CAN/LU/sigtest-{uuid.uuid4().hex[:8]}"
    asyncio.run(_copy_to(hub, delivery_topic(strict), [(headers, tampered, key)]))
    with pytest.raises(BadSignature, match="forged, or changed after signing"):
        asyncio.run(_first(hub, strict, 1, None))


def test_a_partner_refuses_a_genuine_delivery_moved_to_its_topic_or_re_keyed(
    hub: HubSettings, run: Run
) -> None:
    """The hub's signature covers the value and attributes, not the Kafka topic and key: a
    genuine delivery for Kriens copied onto another partner's topic, or re-keyed, is refused
    by the recipient check (the signed ``recipient``) and the key check (the signed case id)."""
    [genuine] = [
        r
        for r in asyncio.run(_records(hub, delivery_topic(KRIENS_OFFICE)))
        if r.key == run.case.case_id.encode() and b"sector_pseudonym" in r.value
    ]
    headers, value, key = list(genuine.headers), genuine.value, run.case.case_id.encode()
    other = f"CH/CAN/LU/sigtest-{uuid.uuid4().hex[:8]}"
    asyncio.run(_copy_to(hub, delivery_topic(other), [(headers, value, key), (headers, value, b"k")]))
    # Two keys, so possibly two partitions: the refusals may come in either order.
    refused = sorted(_refusals(hub, other, 2), key=lambda r: str(r.error))
    assert [type(r.error) for r in refused] == [MisroutedRecord, MisroutedRecord]
    assert f"is addressed to {KRIENS_OFFICE}, not {other}" in str(refused[0].error)
    assert "is keyed 'k', not by its case" in str(refused[1].error)
    # Every genuine delivery passed both checks: the case completed through PartnerClients.
    assert run.case.status == "completed"


def test_no_private_key_reached_the_database(hub: HubSettings, run: Run) -> None:
    """Only public keys travel: identity's register and the registry's mirror hold nothing else."""
    demo_key = local_keyring(hub).signing_key(PORTAL)
    assert demo_key is not None
    raw = demo_key.private_key.private_bytes_raw()

    async def dump() -> str:
        conn = await asyncpg.connect(hub.database_dsn())
        try:
            rows = [
                *await conn.fetch("SELECT * FROM identity.partner_keys"),
                *await conn.fetch("SELECT * FROM registry.partner_keys"),
            ]
        finally:
            await conn.close()
        return json.dumps([dict(r) for r in rows], default=str)

    text = asyncio.run(dump())
    assert text.count(demo_key.public.base64) == 2  # in the register and in the mirror
    assert raw.hex() not in text
    assert base64.b64encode(raw).decode() not in text


@dataclass(frozen=True)
class PlainRun:
    """Moves the portal reported with its own client: plain aiokafka and cryptography."""

    records: dict[str, tuple[bytes, list[tuple[str, bytes]], bytes]]  # name -> key, headers, value
    cases: set[str]  # of their case ids, those the registry opened
    refused: dict[str, str]  # event id -> error class of its dead letter


def _plain_move(
    key: Ed25519PrivateKey, serial: int, *, javascript: bool
) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """A move report with headers written by hand, signed by the plain client's own code.

    ``javascript``: ``ce_time`` as ``Date.toISOString()`` writes it, every optional attribute
    stated; otherwise ``ce_time`` with an ``+00:00`` offset and no fraction, no ``ce_action``,
    ``ce_testdelivery`` or ``ce_dataschema``, and ``Content-Type`` capitalised.
    """
    now = dt.datetime.now(dt.UTC)
    case_id = f"eumzug-{uuid.uuid4()}"
    value = plain_partner.move_report(serial, now.date())
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", f"urn:ch:lu:hub:partner:{PORTAL}".encode()),
        ("ce_type", b"ch.lu.hub.relocation.move-reported.v1"),
        ("ce_businessprocessid", case_id.encode()),
    ]
    if javascript:
        headers += [
            ("ce_time", plain_partner.javascript_time(now).encode()),
            ("ce_dataschema", b"urn:ch:lu:hub:schema:ch.lu.hub.relocation.move-reported.v1"),
            ("ce_action", b"new"),
            ("ce_testdelivery", b"false"),
            ("content-type", b"application/json"),
        ]
    else:
        headers += [
            ("ce_time", now.isoformat(timespec="seconds").encode()),
            ("Content-Type", b"application/json; charset=utf-8"),
        ]
    return case_id.encode(), plain_partner.sign(headers, value, key, PLAIN_KEY), value


@pytest.fixture(scope="module")
def plain(hub: HubSettings, tmp_path_factory: pytest.TempPathFactory) -> PlainRun:
    """The plain client's key registered as an operator does it, then two moves sent."""
    key = Ed25519PrivateKey.generate()
    public_file = tmp_path_factory.mktemp("plain") / f"{PLAIN_KEY}.pub"
    public_file.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    with _cli_environment(hub):
        _hub_cli(
            *("partner", "key", "add", "--partner", PORTAL, "--key-id", PLAIN_KEY),
            *("--public-key", str(public_file)),
        )
    asyncio.run(_until(hub, "SELECT count(*) FROM registry.partner_keys WHERE key_id = $1", 1, PLAIN_KEY))
    records = {
        "javascript-time": _plain_move(key, 60, javascript=True),
        "offset-time-without-optional-attributes": _plain_move(key, 61, javascript=False),
    }
    topic = plain_partner.ingress_topic(PORTAL)
    asyncio.run(plain_partner.publish(hub.bootstrap_servers(), topic, list(records.values())))
    case_ids = [key.decode() for key, _, _ in records.values()]
    event_ids = [plain_partner.header(headers, "ce_id") for _, headers, _ in records.values()]
    # Opened or refused: the test, not the wait, says which it should have been.
    asyncio.run(
        _until(
            hub,
            "SELECT (SELECT count(*) FROM registry.cases WHERE case_id = ANY($1))"
            " + (SELECT count(*) FROM registry.dead_letters WHERE event_id = ANY($2))",
            len(records),
            case_ids,
            event_ids,
        )
    )
    return asyncio.run(_collect_plain(hub, records, case_ids, event_ids))


async def _collect_plain(
    hub: HubSettings,
    records: dict[str, tuple[bytes, list[tuple[str, bytes]], bytes]],
    case_ids: list[str],
    event_ids: list[str],
) -> PlainRun:
    conn = await asyncpg.connect(hub.database_dsn())
    try:
        cases = await conn.fetch("SELECT case_id FROM registry.cases WHERE case_id = ANY($1)", case_ids)
        refused = await conn.fetch(
            "SELECT event_id, error_class FROM registry.dead_letters WHERE event_id = ANY($1)", event_ids
        )
    finally:
        await conn.close()
    return PlainRun(
        records=records,
        cases={row["case_id"] for row in cases},
        refused={row["event_id"]: row["error_class"] for row in refused},
    )


def test_the_plain_client_imports_nothing_of_the_hub() -> None:
    tree = ast.parse(Path(plain_partner.__file__).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {
        "__future__", "aiokafka", "asyncio", "base64", "collections", "cryptography",
        "datetime", "hashlib", "json", "re", "typing",
    }, imported  # fmt: skip


@pytest.mark.parametrize("name", ["javascript-time", "offset-time-without-optional-attributes"])
def test_a_plain_clients_signed_move_opens_its_case(plain: PlainRun, name: str) -> None:
    """A JavaScript ``ce_time`` with milliseconds, or an offset and no ``ce_action``: verified, opened."""
    key, headers, _ = plain.records[name]
    assert plain.refused == {}
    assert key.decode() in plain.cases
    assert dict(headers)["ce_sigkeyid"] == PLAIN_KEY.encode()


def test_a_plain_client_verifies_the_hubs_deliveries_with_its_own_code(
    hub: HubSettings, plain: PlainRun
) -> None:
    """The hub signs its deliveries by the same rules: the plain client's verifier accepts them
    (key id and public key from ``hub keys show``), keyed by the case and addressed to Kriens."""
    with _cli_environment(hub):
        shown = json.loads(_hub_cli("keys", "show", "--json"))
    hub_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(shown["public_key"]))
    case_ids = {key for key, _, _ in plain.records.values()}
    deliveries = asyncio.run(_deliveries_of(hub, KRIENS_OFFICE, case_ids))
    assert {record.key for record in deliveries} == case_ids
    for record in deliveries:
        assert plain_partner.verifies(record.headers, record.value, hub_key, shown["key_id"])
        assert record.key == plain_partner.header(record.headers, "ce_businessprocessid").encode()
        assert json.loads(record.value)["recipient"] == KRIENS_OFFICE
        moved = record.value.replace(b"Hertensteinstrasse", b"Bahnhofstrasse")
        assert moved != record.value
        assert not plain_partner.verifies(record.headers, moved, hub_key, shown["key_id"])
        renamed = [(n, b"hub-0000000000000000" if n == "ce_sigkeyid" else v) for n, v in record.headers]
        assert not plain_partner.verifies(renamed, record.value, hub_key, "hub-0000000000000000")


async def _deliveries_of(hub: HubSettings, partner_id: str, case_ids: set[bytes]) -> list[Any]:
    """The move deliveries of these cases on ``partner_id``'s topic, once all have arrived."""
    topic = plain_partner.delivery_topic(partner_id)
    async with asyncio.timeout(90):
        while True:
            records = [
                r
                for r in await plain_partner.read(hub.bootstrap_servers(), topic)
                if r.key in case_ids
                and json.loads(r.value).get("event_type_delivered") == "ch.lu.hub.relocation.move-reported.v1"
            ]
            if {r.key for r in records} == case_ids:
                return records
