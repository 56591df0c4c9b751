"""A partner probe against a running hub while genuine relocation cases flow.

The probe (``partner_probe.py``) is an outside partner's program: it imports nothing of the
hub, is registered through the CLI as an operator registers a new municipality (Meggen, BFS
1063, party to none of the genuine moves but subscribed to relocations like every
municipality), and runs as a process of its own. It tries each misuse of the isolation,
signed-event and bad-input suites, and operator commands on hub.admin, and sends one genuine
event: the arrival registration of the one move into Meggen, with a JavaScript-style
``ce_time`` and no optional attribute.

Meanwhile the cantonal portal opens moves from Kriens to Lucerne and the demo agencies answer
them. Then: every misuse is refused with its reason (``hub dlq list``, ``hub audit refusals``:
reason class, whether the sender's signature held, the claimed partner), the case it aimed
at is untouched, the probe receives nothing of a case it is no party to, its genuine event
moves its case, every genuine case completes exactly once and each delivery arrives once.
A 2 MB value and a 2 MB header on its ingress topic delay the next case by seconds at most.
Last, the operator suspends it: its event is refused and a new move into Meggen reaches it
no more.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import collections
import contextlib
import datetime as dt
import io
import json
import re
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from contracts import KRIENS, LUCERNE, ArrivalRegistered, CaseCompleted, Municipality, header_value
from hub.cli.main import main
from hub.local.demo import (
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    OPERATIONS,
    PORTAL,
    TAX_OFFICE,
    demo_person,
    move_report,
    new_case_id,
)
from hub.local.partner_client import PartnerClient
from hub.local.provisioning import local_partner
from hub.runtime.settings import HubSettings
from hub.runtime.topics import delivery_topic
from tests.e2e import partner_probe
from tests.e2e.support import Hub, answer_deliveries, cancel_all, read_all, supervised_hub
from tests.fixtures.infrastructure import Infrastructure, point_cli_at

PROBE = "CH/MUN/1063/einwohnerdienste"
MEGGEN = Municipality(bfs_number=1063, name="Meggen", canton="LU")
SCRIPT = Path(partner_probe.__file__)
MOVE = "ch.lu.hub.relocation.move-reported.v1"
PARTY_MISSING = "ch.lu.hub.case.party-missing.v1"
AGENCIES = (KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE)
KEYS = {"main": "meggen-2026a", "spare": "meggen-2026b", "revoked": "meggen-2025z", "expired": "meggen-2024"}
SUBSCRIPTIONS = {
    MOVE: (
        "register the arrival",
        "RHG Art. 11; SRL 16",
        [
            "person.official_name",
            "person.first_name",
            "person.sex",
            "person.date_of_birth",
            "new_address",
            "departure",
            "arrival",
            "move_date",
        ],
    ),
    CaseCompleted.event_type: (
        "close the arrival file",
        "RHG Art. 11",
        ["case_type", "completed_at", "milestones"],
    ),
    "ch.lu.hub.case.rejected.v1": ("stop the arrival", "RHG Art. 11", ["rejected_by", "reason"]),
}
BASELINE_CASES = 5
FLOWS = 2  # genuine cases in flight at once while the probe runs
ADDED_BOUND_S = 5.0  # the next case after 2 MB records: at most this much slower than the median


@dataclass(frozen=True)
class Refusal:
    """How the hub must refuse a misuse: its dead letter's error class and a part of its
    reason; the audit entry's reason class, whether the claimed sender's signature held, and
    the partner the event claimed to come from."""

    error: str
    reason: str
    reason_class: str | None  # None: not a partner event at ingress, so no audit entry
    sender_verified: bool
    partner: str = PROBE
    group: str = "hub.registry.ingress"  # the consumer group that refused it


NOT_A_PARTY = Refusal("NotAParty", f"{PROBE} is not a party to this relocation case", "not-a-party", True)
FOREIGN_TOPIC = "a partner's ingress topic carries only its own events"
CHANGED = "forged, or changed after signing"
MISUSES = {
    "milestone-arrival-on-foreign-case": NOT_A_PARTY,
    "milestone-departure-on-foreign-case": NOT_A_PARTY,
    "rejection-on-foreign-case": NOT_A_PARTY,
    "action-required-on-foreign-case": NOT_A_PARTY,
    "opening-without-the-role": Refusal(
        "NotAuthorized", f"{PROBE} (roles municipality) may not publish {MOVE}", "not-authorized", True
    ),
    "own-event-on-another-partners-topic": Refusal(
        "ForeignIngressTopic", FOREIGN_TOPIC, "not-authorized", True
    ),
    "impersonation-on-the-other-partners-topic": Refusal(
        "ForeignSigningKey",
        f"belongs to {PROBE}, not to the sender {KRIENS_OFFICE}",
        "signature",
        False,
        KRIENS_OFFICE,
    ),
    "impersonation-on-its-own-topic": Refusal(
        "ForeignIngressTopic", FOREIGN_TOPIC, "not-authorized", False, KRIENS_OFFICE
    ),
    "borrowed-event-id-claiming-the-opener": Refusal(
        "ForeignIngressTopic", FOREIGN_TOPIC, "not-authorized", False, PORTAL
    ),
    "subscription-for-itself": Refusal(
        "NotAuthorized",
        f"urn:ch:lu:hub:partner:{PROBE} may not change subscriptions",
        None,
        False,
        group="hub.registry.admin",
    ),
    "posing-as-the-operator": Refusal(
        "UnknownSigningKey",
        f"is signed with {KEYS['main']}, not a trusted operator key",
        None,
        False,
        group="hub.registry.admin",
    ),
    "key-for-another-partner": Refusal(
        "NotAuthorized",
        f"urn:ch:lu:hub:partner:{PROBE} may not administer partners",
        None,
        False,
        group="hub.identity.admin",
    ),
    "unsigned": Refusal("UnsignedEvent", f"of {PROBE} is not signed", "signature", False),
    "key-id-without-signature": Refusal("UnsignedEvent", f"of {PROBE} is not signed", "signature", False),
    "forged": Refusal(
        "BadSignature", f"does not verify with key {KEYS['main']}: {CHANGED}", "signature", False
    ),
    "unknown-key": Refusal("UnknownSigningKey", "names unknown key probe-unknown-", "signature", False),
    "another-partners-key-id": Refusal(
        "ForeignSigningKey", f"belongs to {KRIENS_OFFICE}, not to the sender {PROBE}", "signature", False
    ),
    "tampered-value": Refusal("BadSignature", CHANGED, "signature", False),
    "signed-header-changed": Refusal("BadSignature", CHANGED, "signature", False),
    "ce-header-added": Refusal("BadSignature", CHANGED, "signature", False),
    "key-id-swapped": Refusal(
        "BadSignature", f"does not verify with key {KEYS['spare']}: {CHANGED}", "signature", False
    ),
    "replayed-under-new-id": Refusal("BadSignature", CHANGED, "signature", False),
    "malformed-signature": Refusal("EnvelopeError", "invalid header ce_signature", "contract", False),
    "repeated-attribute": Refusal("EnvelopeError", "duplicate header ce_time", "contract", False),
    "stale-time": Refusal("StaleEvent", "s old; at most 21600s accepted", "replay-window", True),
    "future-time": Refusal(
        "FutureEvent", "in the future; at most 300s of clock skew accepted", "replay-window", True
    ),
    "revoked-key": Refusal(
        "RevokedSigningKey", f"key {KEYS['revoked']} of {PROBE} was revoked at", "signature", False
    ),
    "expired-key": Refusal(
        "KeyOutsideValidity", f"key {KEYS['expired']} of {PROBE} expired at 2025-01-01", "signature", False
    ),
    # The signature holds, but not for this record: its Kafka key is not the case id it signs.
    "keyed-otherwise": Refusal(
        "MisroutedRecord", "is keyed 'another-key', not by its case", "signature", False
    ),
    "repeated-extension": Refusal(
        "AmbiguousHeaders", "header ce_partnerref appears more than once", "signature", False
    ),
    "invalid-attribute-name": Refusal("AmbiguousHeaders", "ce_partner_ref", "signature", False),
    "unknown-type": Refusal(
        "UnknownEventType",
        "unknown event type 'ch.lu.hub.relocation.moon-landing-reported.v1'",
        "contract",
        True,
    ),
    "unknown-version": Refusal(
        "UnknownEventType",
        "unknown version v9 of ch.lu.hub.relocation.arrival-registered; known: v1",
        "contract",
        True,
    ),
    "not-json": Refusal("ContractViolation", "value is not JSON", "contract", True),
    "contract-violation": Refusal("ContractViolation", "registered_on", "contract", True),
    "missing-specversion": Refusal("EnvelopeError", "missing header ce_specversion", "contract", False),
    "missing-ce-headers": Refusal(
        "EnvelopeError", "missing header ce_type; missing header ce_time", "contract", False
    ),
    "wrong-content-type": Refusal(
        "EnvelopeError", "unsupported content-type: expected application/json", "contract", False
    ),
    "unknown-case": Refusal(
        "UnknownCase", "no case with business process id eumzug-probe-", "unknown-case", True
    ),
}
TOO_LARGE = Refusal("MessageTooLarge", "exceeds the limit of 262144", "too-large", True)
SUSPENDED = Refusal("NotAuthorized", f"partner {PROBE} is suspended", "not-authorized", True)


@dataclass(frozen=True)
class Episode:
    """A case's state before and after the probe acted on it."""

    case_id: str
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass
class Run:
    cli: dict[str, str] = field(default_factory=dict)  # command name -> its output
    report: dict[str, Any] = field(default_factory=dict)  # the probe's report of its main run
    oversized: dict[str, Any] = field(default_factory=dict)  # ... of the 2 MB records
    suspended: dict[str, Any] = field(default_factory=dict)  # ... while suspended
    own_case: str = ""  # the move into Meggen: the probe is its arrival municipality
    moved_in_after_suspension: str = ""  # a second move into Meggen, once the probe is suspended
    victim: Episode | None = None  # the move from Kriens to Lucerne the probe tried to act on
    seconds: dict[str, float] = field(default_factory=dict)  # genuine case -> report to completion
    flowing: list[str] = field(default_factory=list)  # genuine cases opened while the probe ran
    windows: list[tuple[float, float]] = field(default_factory=list)  # ... from opened to completed
    probing: tuple[float, float] = (0.0, 0.0)  # the probe's main run, from start to exit
    before_huge: list[str] = field(default_factory=list)  # genuine cases just before the 2 MB records
    after_huge: str = ""  # the genuine case opened right after them
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # hub dlq list --json
    shown: dict[str, dict[str, Any]] = field(default_factory=dict)  # attempt -> hub dlq show --json
    refusals: list[dict[str, Any]] = field(default_factory=list)  # hub audit refusals --json
    verdict: dict[str, Any] = field(default_factory=dict)  # hub audit verify --json
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # query name -> rows
    topics: dict[str, list[Any]] = field(default_factory=dict)  # partner -> its delivery records

    def attempts(self, report: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        return {a["name"]: a for a in (report or self.report)["attempts"]}

    def all_attempts(self) -> dict[str, dict[str, Any]]:
        return {
            **self.attempts(self.report),
            **self.attempts(self.oversized),
            **self.attempts(self.suspended),
        }

    @property
    def genuine_cases(self) -> list[str]:
        return list(self.seconds)


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with supervised_hub(infrastructure, tmp_path_factory) as hub:
        yield hub


@pytest.fixture(scope="module")
def run(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("probe")
    with pytest.MonkeyPatch.context() as patch:
        # The operator's shell: HUB_* settings of this hub, commands signed with its operator key.
        point_cli_at(hub.settings, patch, hub.settings.state_dir)
        yield asyncio.run(_run(hub.settings, folder))


def _cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    assert code == 0, (args, out.getvalue())
    return out.getvalue()


async def cli(*args: str) -> str:
    """A `hub` command as an operator runs it (in a thread: it runs an event loop of its own)."""
    return await asyncio.to_thread(_cli, *args)


def _key_files(folder: Path) -> dict[str, Path]:
    """A PKCS#8 PEM private key and its public PEM per key of the probe."""
    files = {}
    for name, key_id in KEYS.items():
        key = Ed25519PrivateKey.generate()
        private = folder / f"{key_id}.key"
        private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        (folder / f"{key_id}.pub").write_bytes(
            key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
        files[name] = private
    return files


async def _register(settings: HubSettings, pool: asyncpg.Pool, folder: Path, run: Run) -> dict[str, Path]:
    """The probe joins as an operator adds a municipality: register, keys, subscriptions."""
    run.cli["register"] = await cli(
        *("partner", "register", "--id", PROBE, "--name", "Gemeinde Meggen, Einwohnerdienste"),
        *("--sector", "resident-registration", "--role", "municipality", "--local-id-category", "CH.LU.1063"),
        *("--municipality", "1063", "--canton", "LU"),
    )
    await _until(
        pool, "SELECT count(*) FROM registry.partners WHERE partner_id = $1 AND status = 'active'", PROBE
    )
    for event_type, (purpose, basis, fields) in SUBSCRIPTIONS.items():
        run.cli[f"subscribe {event_type}"] = await cli(
            *("subscription", "set", PROBE, event_type, "--case-type", "relocation", "--purpose", purpose),
            *("--legal-basis", basis, "--retention-days", "3650", "--status", "approved"),
            *(arg for name in fields for arg in ("--field", name)),
        )
    files = _key_files(folder)
    for name, key_id in KEYS.items():
        window = ["--valid-from", "2024-01-01T00:00:00+01:00", "--valid-until", "2025-01-01T00:00:00Z"]
        run.cli[f"key add {name}"] = await cli(
            *("partner", "key", "add", "--partner", PROBE, "--key-id", key_id),
            *("--public-key", str(folder / f"{key_id}.pub")),
            *(window if name == "expired" else []),
        )
    await _until(
        pool, "SELECT count(*) FROM registry.partner_keys WHERE partner_id = $1", PROBE, wanted=len(KEYS)
    )
    run.cli["key revoke"] = await cli(
        "partner", "key", "revoke", "--partner", PROBE, "--key-id", KEYS["revoked"], "--reason", "rotated out"
    )
    await _until(
        pool,
        "SELECT count(*) FROM registry.partner_keys WHERE key_id = $1 AND revoked_at IS NOT NULL",
        KEYS["revoked"],
    )
    await _until(
        pool,
        "SELECT count(*) FROM registry.subscriptions WHERE partner_id = $1 AND status = 'approved'",
        PROBE,
        wanted=len(SUBSCRIPTIONS),
    )
    run.cli["partner list"] = await cli("partner", "list", "--json")
    run.cli["subscription list"] = await cli("subscription", "list", "--json")
    run.cli["key list"] = await cli("partner", "key", "list", "--partner", PROBE, "--json")
    run.cli["keys show"] = await cli("keys", "show", "--json", "--out", str(folder / "hub.pub"))
    run.cli["kriens keys"] = await cli("partner", "key", "list", "--partner", KRIENS_OFFICE, "--json")
    return files


def _probe_args(settings: HubSettings, run: Run, files: dict[str, Path], folder: Path) -> list[str]:
    shown = json.loads(run.cli["keys show"])
    kriens_key = next(k["key_id"] for k in json.loads(run.cli["kriens keys"]) if k["revoked_at"] is None)
    args = [
        *("--bootstrap", settings.bootstrap_servers(), "--partner-id", PROBE),
        *("--key-file", str(files["main"]), "--key-id", KEYS["main"]),
        *("--hub-key-id", shown["key_id"], "--hub-public-key", str(folder / "hub.pub")),
        *("--own-case", run.own_case, "--opener", PORTAL, "--other-partner", KRIENS_OFFICE),
        *("--foreign-key-id", kriens_key, "--wait", "90"),
    ]
    for name in ("spare", "revoked", "expired"):
        args += [f"--{name}-key-file", str(files[name]), f"--{name}-key-id", KEYS[name]]
    return args


async def _probe(*args: str) -> dict[str, Any]:
    """The probe as a process of its own; its report (stdout), its verdict lines shown."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    print(err.decode(), file=sys.stderr)
    assert out.startswith(b"{"), f"the probe reported nothing (exit status {process.returncode}): {err!r}"
    report: dict[str, Any] = json.loads(out)
    report["exit_status"] = process.returncode
    return report


class Genuine:
    """The genuine side: the portal reports moves, Kriens, Lucerne and the tax office answer
    each case they are told to (``answering``), as the demo's agencies do."""

    def __init__(self, settings: HubSettings, pool: asyncpg.Pool) -> None:
        self.settings, self.pool = settings, pool
        self.answering: dict[str, set[str]] = {partner: set() for partner in AGENCIES}
        self._clients = {p: self._client(p) for p in (*AGENCIES, PORTAL)}
        self._tasks: list[asyncio.Task[None]] = []
        self._serial = 100

    def _client(self, partner: str) -> PartnerClient:
        return local_partner(self.settings, partner)

    async def start(self) -> None:
        for client in self._clients.values():
            await client.start()
        self._tasks = [
            asyncio.create_task(answer_deliveries(self._clients[p], self.answering[p])) for p in AGENCIES
        ]

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        for client in self._clients.values():
            await client.stop()

    async def open(self, arrival: Municipality, answering: tuple[str, ...]) -> str:
        case_id = new_case_id()
        for partner in answering:
            self.answering[partner].add(case_id)
        self._serial += 1
        report = move_report(demo_person(self._serial), departure=KRIENS, arrival=arrival)
        await self._clients[PORTAL].publish(report, business_process_id=case_id)
        return case_id

    async def case(self) -> tuple[str, float]:
        """A move from Kriens to Lucerne, every party answering: seconds from report to completion."""
        started = time.monotonic()
        case_id = await self.open(LUCERNE, AGENCIES)
        await _until(
            self.pool,
            "SELECT count(*) FROM registry.cases WHERE case_id = $1 AND status = 'completed'",
            case_id,
        )
        return case_id, time.monotonic() - started

    async def flow(self, stop: asyncio.Event, run: Run) -> None:
        """Cases one after another until ``stop``, each with when it was open."""
        while not stop.is_set():
            opened = time.monotonic()
            case_id, seconds = await self.case()
            run.seconds[case_id] = seconds
            run.flowing.append(case_id)
            run.windows.append((opened, time.monotonic()))

    async def register_arrival(self, case_id: str) -> None:
        """Lucerne registers the arrival it held back (the case the probe tried to move)."""
        arrived = ArrivalRegistered(municipality=LUCERNE, registered_on=dt.date.today())
        await self._clients[LUCERNE_OFFICE].publish(arrived, business_process_id=case_id)


async def _run(settings: HubSettings, folder: Path) -> Run:
    run = Run()
    pool = await asyncpg.create_pool(settings.database_dsn(), min_size=1, max_size=4)
    genuine = Genuine(settings, pool)
    try:
        files = await _register(settings, pool, folder, run)
        await genuine.start()
        run.own_case = await genuine.open(MEGGEN, (KRIENS_OFFICE, TAX_OFFICE))
        victim = await genuine.open(LUCERNE, (KRIENS_OFFICE, TAX_OFFICE))  # Lucerne holds back
        query = "SELECT count(*) FROM registry.case_milestones WHERE case_id = $1"
        await _until(pool, query, victim, wanted=2)
        before = await _state(pool, victim)
        for _ in range(2):  # the hub has warmed up before the probe starts
            case_id, seconds = await genuine.case()
            run.seconds[case_id] = seconds

        # The probe's main run, while genuine cases flow.
        args = _probe_args(settings, run, files, folder)
        stop = asyncio.Event()
        flows = [asyncio.create_task(genuine.flow(stop, run)) for _ in range(FLOWS)]
        try:
            started = time.monotonic()
            run.report = await _probe(*args, "--foreign-case", victim, "--dead-letters")
            run.probing = (started, time.monotonic())
        finally:
            stop.set()
            await asyncio.gather(*flows)
        await _dead_lettered(pool, run.report)
        run.victim = Episode(victim, before, await _state(pool, victim))
        await genuine.register_arrival(victim)
        await _until(
            pool, "SELECT count(*) FROM registry.cases WHERE case_id = $1 AND status = 'completed'", victim
        )

        # 2 MB records: the next case against the median of those just before.
        for _ in range(BASELINE_CASES):
            case_id, seconds = await genuine.case()
            run.seconds[case_id] = seconds
            run.before_huge.append(case_id)
        run.oversized = await _probe(*args, "--only", "oversized", "--wait", "5")
        run.after_huge, run.seconds[run.after_huge] = await genuine.case()
        await _dead_lettered(pool, run.oversized)

        # Suspended: refused, and a new move into Meggen reaches the probe no more.
        run.cli["suspend"] = await cli("partner", "suspend", PROBE, "--reason", "probe finished")
        await _until(
            pool,
            "SELECT count(*) FROM registry.partners WHERE partner_id = $1 AND status = 'suspended'",
            PROBE,
        )
        run.moved_in_after_suspension = await genuine.open(MEGGEN, (KRIENS_OFFICE, TAX_OFFICE))
        delivered = (
            "SELECT count(*) FROM registry.audit_log WHERE case_id = $1 AND decision = 'delivered'"
            " AND event_type = $2"
        )
        await _until(pool, delivered, run.moved_in_after_suspension, MOVE, wanted=2)
        run.suspended = await _probe(*args, "--only", "suspended", "--dead-letters")
        await _collect(settings, pool, run)
    finally:
        await genuine.stop()
        await pool.close()
    return run


async def _dead_lettered(pool: asyncpg.Pool, report: dict[str, Any]) -> None:
    """Every attempt the hub should refuse is in its dead letters (or was refused at once by
    the broker), and every dead letter is published."""
    refused = [
        a
        for a in report["attempts"]
        if a["expected"]["outcome"] == "refused" and a["sent"]["offset"] is not None
    ]
    await _until(
        pool,
        "SELECT count(*) FROM (SELECT topic, partition, kafka_offset FROM registry.dead_letters"
        " UNION ALL SELECT topic, partition, kafka_offset FROM identity.dead_letters) d"
        " JOIN unnest($1::text[], $2::int[], $3::bigint[]) AS s(topic, partition, kafka_offset)"
        " USING (topic, partition, kafka_offset)",
        [a["sent"]["topic"] for a in refused],
        [a["sent"]["partition"] for a in refused],
        [a["sent"]["offset"] for a in refused],
        wanted=len(refused),
    )
    for schema in ("registry", "identity"):
        await _until(
            pool,
            f"SELECT count(*) FROM {schema}.outbox"
            " WHERE published_at IS NULL AND aggregatetype = 'dead-letter'",
            wanted=0,
        )


async def _collect(settings: HubSettings, pool: asyncpg.Pool, run: Run) -> None:
    run.dead_letters = json.loads(await cli("dlq", "list", "--limit", "1000", "--json"))
    run.cli["subscription list after"] = await cli("subscription", "list", "--json")
    run.cli["kriens keys after"] = await cli("partner", "key", "list", "--partner", KRIENS_OFFICE, "--json")
    run.refusals = json.loads(await cli("audit", "refusals", "--limit", "1000", "--json"))
    run.verdict = json.loads(await cli("audit", "verify", "--json"))
    for name in ("value-2mb", "header-2mb"):
        letter = _dead_letter_of(run, run.attempts(run.oversized)[name])
        if letter is not None:
            run.shown[name] = json.loads(
                await cli("dlq", "show", str(letter["id"]), "--service", "registry", "--json")
            )
    cases = [*run.genuine_cases, run.own_case, run.victim.case_id if run.victim else ""]
    queries = {
        "cases": "SELECT case_id, status FROM registry.cases WHERE case_id = ANY($1)",
        "steps": "SELECT case_id, event_type, event_id, service FROM registry.timeline"
        " WHERE case_id = ANY($1)",
        "milestones": "SELECT case_id, milestone, partner_id, event_id FROM registry.case_milestones"
        " WHERE case_id = ANY($1)",
        "delivered": "SELECT case_id, partner_id, event_type FROM registry.audit_log"
        " WHERE decision = 'delivered' AND case_id = ANY($1)",
    }
    for name, sql in queries.items():
        run.rows[name] = [dict(r) for r in await pool.fetch(sql, [*cases, run.moved_in_after_suspension])]
    run.rows["to the probe"] = [
        dict(r)
        for r in await pool.fetch(
            "SELECT case_id, event_type FROM registry.audit_log"
            " WHERE partner_id = $1 AND decision = 'delivered'",
            PROBE,
        )
    ]
    run.rows["inbox"] = [
        dict(r)
        for r in await pool.fetch(
            "SELECT event_key FROM registry.inbox"
            " WHERE consumer = 'hub.registry.ingress' AND event_key LIKE $1",
            f"%{PROBE}%",
        )
    ]
    run.rows["opened"] = [
        dict(r)
        for r in await pool.fetch("SELECT case_id FROM registry.cases WHERE case_id LIKE 'eumzug-probe-%'")
    ]
    for partner in (*AGENCIES, PROBE):
        run.topics[partner] = await read_all(settings, delivery_topic(partner))


async def _state(pool: asyncpg.Pool, case_id: str) -> dict[str, Any]:
    """What a step on the case changes: status, milestones, partner and registry steps,
    deliveries, notices (each written in the step's own transaction)."""
    row = await pool.fetchrow(
        """
        SELECT c.status,
               (SELECT array_agg(milestone || '@' || partner_id ORDER BY milestone)
                  FROM registry.case_milestones m WHERE m.case_id = c.case_id) AS milestones,
               (SELECT count(*) FROM registry.timeline t
                 WHERE t.case_id = c.case_id AND t.service NOT IN ('identity', 'notifications')) AS steps,
               (SELECT count(*) FROM registry.audit_log a
                 WHERE a.case_id = c.case_id AND a.decision = 'delivered') AS deliveries,
               (SELECT count(*) FROM registry.outbox o
                 WHERE o.aggregateid = c.case_id AND o.topic = 'hub.notification.requests') AS notices
        FROM registry.cases c WHERE c.case_id = $1
        """,
        case_id,
    )
    assert row is not None
    return dict(row)


async def _until(pool: asyncpg.Pool, sql: str, *args: Any, wanted: int = 1, timeout_s: float = 90) -> None:
    """Until ``sql`` counts ``wanted`` (at least, or exactly 0 if ``wanted`` is 0)."""
    deadline = time.monotonic() + timeout_s
    count = None
    while time.monotonic() < deadline:
        count = await pool.fetchval(sql, *args)
        if count >= wanted if wanted else count == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"waited for {wanted}, last saw {count}: {sql} {args}")


def _dead_letter_of(run: Run, attempt: dict[str, Any]) -> dict[str, Any] | None:
    sent = attempt["sent"]
    found = [
        d
        for d in run.dead_letters
        if (d["topic"], d["partition"], d["offset"]) == (sent["topic"], sent["partition"], sent["offset"])
    ]
    assert len(found) <= 1, found
    return found[0] if found else None


def _refusals_of(run: Run, attempt: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in run.refusals if r["event_id"] == attempt["sent"]["event_id"]]


def _check_refused(run: Run, attempt: dict[str, Any], expected: Refusal) -> None:
    assert attempt["expected"]["outcome"] == "refused"
    assert attempt["expected"]["error"] == expected.error  # the probe's reading of the documents
    assert attempt["expected"]["reason_class"] == expected.reason_class
    letter = _dead_letter_of(run, attempt)
    assert letter is not None, f"{attempt['name']} was not dead-lettered"
    assert letter["error_class"] == expected.error, letter
    assert expected.reason in letter["error_message"], letter
    assert letter["consumer_group"] == expected.group
    if expected.reason_class is None:
        assert _refusals_of(run, attempt) == []
        return
    [entry] = _refusals_of(run, attempt)  # sealed into the audit chain, once
    assert entry["reason"].startswith(f"{expected.error}: "), entry
    assert (entry["reason_class"], entry["sender_verified"], entry["partner_id"]) == (
        expected.reason_class,
        expected.sender_verified,
        expected.partner,
    ), entry


# --- The probe itself ----------------------------------------------------------------------------


def test_the_probe_imports_nothing_of_the_hub() -> None:
    tree = ast.parse(SCRIPT.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {
        "__future__", "aiokafka", "argparse", "asyncio", "base64", "collections", "cryptography",
        "dataclasses", "datetime", "hashlib", "json", "pathlib", "re", "sys", "typing", "uuid",
    }, imported  # fmt: skip


def test_the_probe_signs_as_the_documents_vectors_say() -> None:
    """Its own signing code reproduces every test vector of docs/partners/signing.md."""
    document = json.loads((Path(__file__).parents[2] / "docs/partners/signing-vectors.json").read_text())
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(document["key"]["seed_hex"]))
    assert document["vectors"]
    for vector in document["vectors"]:
        headers = [(name, value.encode()) for name, value in vector["headers"]]
        value = vector["value"].encode()
        form = partner_probe.signed_form(headers, value)
        assert form == base64.b64decode(vector["signed_form_base64"]), vector["name"]
        assert partner_probe.signature_over(form, private).decode() == vector["signature"]
        assert partner_probe.verifies(headers, value, private.public_key(), document["key"]["key_id"])


# --- Registered through the CLI -----------------------------------------------------------------


def test_the_probe_is_registered_through_the_cli(run: Run) -> None:
    sent = {
        name: out
        for name, out in run.cli.items()
        if name.startswith(("register", "subscribe", "key add", "key revoke", "suspend"))
    }
    assert len(sent) == 1 + len(SUBSCRIPTIONS) + len(KEYS) + 2
    for name, out in sent.items():
        assert re.fullmatch(r"sent ch\.lu\.hub\.admin\.[a-z-]+\.v1 \S+\n", out), (name, out)
    [partner] = [p for p in json.loads(run.cli["partner list"]) if p["partner_id"] == PROBE]
    assert partner["status"] == "active"
    assert partner["roles"] == ["municipality"]
    assert partner["jurisdiction"] == {"level": "municipality", "bfs_number": 1063, "canton": "LU"}
    subscriptions = [s for s in json.loads(run.cli["subscription list"]) if s["partner_id"] == PROBE]
    assert {s["event_type"]: (s["status"], s["scope"]) for s in subscriptions} == dict.fromkeys(
        SUBSCRIPTIONS, ("approved", "party")
    )
    keys = {k["key_id"]: k for k in json.loads(run.cli["key list"])}
    assert set(keys) == set(KEYS.values())
    assert keys[KEYS["revoked"]]["revoked_at"] is not None
    assert keys[KEYS["revoked"]]["revocation_reason"] == "rotated out"
    assert keys[KEYS["expired"]]["valid_until"].startswith("2025-01-01 00:00:00")
    assert keys[KEYS["main"]]["revoked_at"] is None
    assert keys[KEYS["spare"]]["revoked_at"] is None


# --- Every misuse refused with its reason -------------------------------------------------------


def test_the_probe_tried_every_misuse_and_found_each_as_the_documents_say(run: Run) -> None:
    """The probe's own verdicts (by the dead-letter topic), and its attempts are exactly the
    misuses this module checks: none untried, none unchecked."""
    attempts = run.attempts()
    refused = {name for name, a in attempts.items() if a["expected"]["outcome"] == "refused"}
    assert refused == set(MISUSES)
    assert run.report["notes"] == []  # nothing skipped for want of an option
    assert run.report["summary"]["unexpected"] == [], run.report["summary"]
    assert run.report["summary"]["not_checked"] == []
    assert run.report["exit_status"] == 0


@pytest.mark.parametrize("name", list(MISUSES))
def test_a_misuse_is_refused_with_its_reason(run: Run, name: str) -> None:
    _check_refused(run, run.attempts()[name], MISUSES[name])


def test_a_misused_case_is_untouched(run: Run) -> None:
    """The case the probe is no party to: its milestone, rejection and request changed nothing
    (status, milestones, steps, deliveries, notices); Lucerne's own registration then completed it."""
    assert run.victim is not None
    assert run.victim.after == run.victim.before
    assert run.victim.before["status"] == "in-progress"
    assert sorted(run.victim.before["milestones"]) == [
        f"departure-confirmed@{KRIENS_OFFICE}",
        f"tax-record-updated@{TAX_OFFICE}",
    ]
    statuses = {r["case_id"]: r["status"] for r in run.rows["cases"]}
    assert statuses[run.victim.case_id] == "completed"
    milestones = {
        (r["milestone"], r["partner_id"])
        for r in run.rows["milestones"]
        if r["case_id"] == run.victim.case_id
    }
    assert ("arrival-registered", LUCERNE_OFFICE) in milestones
    assert not [m for m in milestones if m[1] == PROBE]


def test_no_command_on_hub_admin_changed_a_subscription_or_a_key(run: Run) -> None:
    """Its own subscription still reaches only its cases; Kriens holds no key of the probe's."""
    mine = [s for s in json.loads(run.cli["subscription list after"]) if s["partner_id"] == PROBE]
    assert {s["event_type"]: (s["status"], s["scope"]) for s in mine} == dict.fromkeys(
        SUBSCRIPTIONS, ("approved", "party")
    )
    kriens = [k["key_id"] for k in json.loads(run.cli["kriens keys after"])]
    assert kriens
    assert not [k for k in kriens if k.startswith("probe-planted-")]


def test_no_misuse_opened_or_moved_a_case(run: Run) -> None:
    """Neither the move report it may not send nor the event on an unknown case opened one; the
    misuses aimed at its own case reached none of its milestones: only its genuine event did."""
    assert run.rows["opened"] == []
    genuine = run.attempts()["genuine-arrival-registered"]["sent"]["event_id"]
    own = [r for r in run.rows["milestones"] if r["case_id"] == run.own_case]
    assert {
        (r["milestone"], r["partner_id"], r["event_id"] if r["partner_id"] == PROBE else "") for r in own
    } == {
        ("departure-confirmed", KRIENS_OFFICE, ""),
        ("tax-record-updated", TAX_OFFICE, ""),
        ("arrival-registered", PROBE, genuine),
    }
    attempts = run.all_attempts()
    borrowed = attempts.pop("borrowed-event-id-claiming-the-opener")["sent"]["event_id"]
    misuse_ids = {a["sent"]["event_id"] for a in attempts.values() if a["expected"]["outcome"] == "refused"}
    assert not [s for s in run.rows["steps"] if s["event_id"] in misuse_ids]
    # The id the probe borrowed is the portal's move report's: the opening, and nothing since.
    steps = {
        (s["case_id"], s["event_type"], s["service"]) for s in run.rows["steps"] if s["event_id"] == borrowed
    }
    assert steps == {(run.own_case, MOVE, PORTAL), (run.own_case, "case-opened", "registry")}


def test_a_replayed_event_is_dropped_as_a_duplicate_not_dead_lettered(run: Run) -> None:
    attempts = run.attempts()
    genuine, replayed = attempts["genuine-arrival-registered"], attempts["replayed-same-id"]
    assert replayed["expected"] == {"outcome": "duplicate", "error": None, "reason_class": None}
    assert replayed["sent"]["event_id"] == genuine["sent"]["event_id"]
    assert replayed["sent"]["offset"] > genuine["sent"]["offset"]
    assert _dead_letter_of(run, replayed) is None
    assert _refusals_of(run, replayed) == []
    assert replayed["verdict"] == "as-expected"
    claimed = [r for r in run.rows["inbox"] if r["event_key"].endswith(" " + genuine["sent"]["event_id"])]
    assert len(claimed) == 1  # processed once
    steps = [s for s in run.rows["steps"] if s["event_id"] == genuine["sent"]["event_id"]]
    assert len([s for s in steps if s["service"] == PROBE]) == 1


# --- The genuine side --------------------------------------------------------------------------


def test_the_probes_genuine_event_is_accepted_and_its_deliveries_verify(run: Run) -> None:
    """JavaScript-style ce_time, no optional attributes: accepted, the case completes; the probe
    received the move and the completion, each verified with the hub's key from `hub keys show`,
    keyed by the case and addressed to it."""
    genuine = run.attempts()["genuine-arrival-registered"]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", dict(genuine["sent"]["headers"])["ce_time"]
    )
    assert not {"ce_action", "ce_testdelivery", "ce_dataschema"} & set(dict(genuine["sent"]["headers"]))
    assert genuine["verdict"] == "as-expected"
    assert _dead_letter_of(run, genuine) is None
    assert {r["case_id"]: r["status"] for r in run.rows["cases"]}[run.own_case] == "completed"
    own = [d for d in run.report["deliveries"] if d["case_id"] == run.own_case]
    assert sorted(d["delivered_type"] for d in own) == sorted([MOVE, CaseCompleted.event_type])
    assert all(d["genuine"] for d in own), own
    assert run.report["summary"]["deliveries_not_genuine"] == 0


def test_the_probe_receives_nothing_of_a_case_it_is_no_party_to(run: Run) -> None:
    """Subscribed to moves like every municipality, it received only its own case's deliveries:
    on its topic, in its report and in the audit log."""
    assert run.report["summary"]["deliveries_of_other_cases"] == []
    keys = {(r.key or b"").decode() for r in run.topics[PROBE]}
    assert keys == {run.own_case}
    assert {r["case_id"] for r in run.rows["to the probe"]} == {run.own_case}
    assert len(run.genuine_cases) >= BASELINE_CASES + 3
    subscribed = {
        s["event_type"] for s in json.loads(run.cli["subscription list"]) if s["partner_id"] == PROBE
    }
    assert MOVE in subscribed


def test_the_genuine_cases_complete_exactly_once_and_each_delivery_arrives_once(run: Run) -> None:
    start, end = run.probing
    during = [(opened, done) for opened, done in run.windows if opened < end and done > start]
    print(f"genuine cases in flight while the probe ran ({end - start:.1f}s): {len(during)}")
    assert during, "no genuine case flowed while the probe ran"
    assert run.victim is not None
    cases = [*run.genuine_cases, run.victim.case_id, run.own_case]
    statuses = {r["case_id"]: r["status"] for r in run.rows["cases"]}
    assert {c: statuses.get(c) for c in cases} == dict.fromkeys(cases, "completed")
    completions = collections.Counter(
        s["case_id"] for s in run.rows["steps"] if s["event_type"] == CaseCompleted.event_type
    )
    opened = collections.Counter(s["case_id"] for s in run.rows["steps"] if s["event_type"] == "case-opened")
    assert {c: (opened[c], completions[c]) for c in cases} == dict.fromkeys(cases, (1, 1))
    parties = {
        c: {KRIENS_OFFICE, LUCERNE_OFFICE, TAX_OFFICE} for c in [*run.genuine_cases, run.victim.case_id]
    }
    parties[run.own_case] = {KRIENS_OFFICE, TAX_OFFICE, PROBE}
    received: dict[str, set[str]] = {c: set() for c in cases}
    for partner, records in run.topics.items():
        copies = collections.Counter(
            ((r.key or b"").decode(), header_value(r.headers, "ce_id"))
            for r in records
            if (r.key or b"").decode() in received
        )
        assert set(copies.values()) <= {1}, (partner, copies)  # every delivery once
        for case_id, _ in copies:
            received[case_id].add(partner)
    assert received == parties


def test_a_2_mb_record_delays_the_next_case_by_a_few_seconds_at_most(run: Run) -> None:
    before = [run.seconds[c] for c in run.before_huge]
    after = run.seconds[run.after_huge]
    median = statistics.median(before)
    print(
        "case completion (report to completed): before the 2 MB records "
        + ", ".join(f"{s:.2f}s" for s in before)
        + f" (median {median:.2f}s); right after them {after:.2f}s (added {after - median:+.2f}s);"
        + " while the probe ran "
        + ", ".join(f"{run.seconds[c]:.2f}s" for c in run.flowing)
    )
    letters = {name: _dead_letter_of(run, a) for name, a in run.attempts(run.oversized).items()}
    for name, attempt in run.attempts(run.oversized).items():
        letter = letters[name]
        if letter is not None:
            sent = dt.datetime.fromisoformat(attempt["sent"]["at"])
            lag = (dt.datetime.fromisoformat(letter["recorded_at"]) - sent).total_seconds()
            print(f"{name}: dead-lettered {lag:.2f}s after it was sent")
    assert after - median <= ADDED_BOUND_S


@pytest.mark.parametrize("name", ["value-2mb", "header-2mb"])
def test_a_2_mb_record_is_refused_and_kept_as_a_reference(run: Run, name: str) -> None:
    attempt = run.attempts(run.oversized)[name]
    if attempt["observed"] and attempt["observed"]["outcome"] == "refused-by-broker":
        # Apache Kafka enforces the ingress topic's max.message.bytes (Tansu does not).
        assert attempt["observed"]["error"] == "MessageSizeTooLargeError"
        return
    _check_refused(run, attempt, TOO_LARGE)
    shown = run.shown[name]
    assert shown["truncated"] is True
    assert len((shown["payload"] or {}).get("text", "")) <= 1024  # the first bytes, no more
    assert shown["original_size"] == attempt["sent"]["value_bytes"]
    assert all(len(value) <= 512 for _, value in shown["headers"])


def test_a_suspended_probe_is_refused_and_receives_no_new_case(run: Run) -> None:
    _check_refused(run, run.attempts(run.suspended)["while-suspended"], SUSPENDED)
    assert run.suspended["summary"]["unexpected"] == []
    assert run.moved_in_after_suspension not in {d["case_id"] for d in run.suspended["deliveries"]}
    delivered = {
        (r["partner_id"], r["event_type"])
        for r in run.rows["delivered"]
        if r["case_id"] == run.moved_in_after_suspension
    }
    # Its slot is unfilled while it is suspended: operations are told, the others get the move.
    assert delivered == {(KRIENS_OFFICE, MOVE), (TAX_OFFICE, MOVE), (OPERATIONS, PARTY_MISSING)}


def test_the_audit_chain_holds_every_refusal_intact(run: Run) -> None:
    """One sealed refusal per partner event refused at ingress (commands on hub.admin are the
    admin services' dead letters only), and `hub audit verify` finds the chain intact."""
    assert run.verdict["intact"] is True
    attempts = run.all_attempts()
    mine = [r for r in run.refusals if r["event_id"] in {a["sent"]["event_id"] for a in attempts.values()}]
    at_ingress = [
        a
        for name, a in attempts.items()
        if a["expected"]["outcome"] == "refused"
        and a["sent"]["offset"] is not None  # not refused by the broker already
        and (name not in MISUSES or MISUSES[name].reason_class is not None)
    ]
    assert len(mine) == len(at_ingress)
