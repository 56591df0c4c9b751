"""A partner written in another language: the Node.js client (clients/node, kafkajs and
node:crypto) as a municipality, against the hub's processes.

The municipality of Horw (BFS 1058) joins a running hub as a new partner would: registered,
subscribed and given its signing key through the `hub` CLI. The portal reports a move from
Kriens to Horw, built with the CloudEvents Python SDK's Kafka binding and signed over the
SDK's own headers, under a trace of its own. Horw, as the arrival municipality, receives the
delivery in its Node process, verifies the hub's signature, the key and the recipient, and
answers with its milestone, passing the delivery's traceparent on. Kriens and the tax office
(Python partners) answer theirs. The case completes, Horw's step is on it under the case's
trace, and Horw's client drops a repeated delivery and refuses forged, re-keyed and foreign
ones that land on its topic.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import io
import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from cloudevents.core.bindings.kafka import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from contracts import KRIENS, Contract, DepartureConfirmed, MoveReported, Municipality, TaxRecordUpdated
from contracts.channels import delivery_topic, ingress_topic, partner_source
from hub.cli.main import main
from hub.local.demo import KRIENS_OFFICE, PORTAL, TAX_OFFICE, demo_person, move_report, run_agency
from hub.local.partner_client import Delivery
from hub.local.provisioning import local_partner
from hub.runtime.settings import HubSettings
from hub.security.signed_form import canonical_form
from hub.security.signing import SigningKey
from tests.e2e.support import cancel_all, read_all, supervised_hub
from tests.fixtures.infrastructure import Infrastructure, point_cli_at

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "node"
HORW_OFFICE = "CH/MUN/1058/einwohnerdienste"
HORW = Municipality(bfs_number=1058, name="Horw", canton="LU")
NODE_KEY_ID = "horw-node-2026"
SDK_KEY_ID = "portal-cloudevents-sdk"
ARRIVAL = "ch.lu.hub.relocation.arrival-registered.v1"


@pytest.fixture(scope="module")
def node_client() -> Path:
    """`npm ci` of the client, from its package-lock (a fresh clone has no node_modules)."""
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed: the Node.js client's dependencies come from its package-lock"
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=CLIENT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (CLIENT / "node_modules" / "kafkajs" / "package.json").is_file()
    return CLIENT


class NodeProcess:
    """The client's municipality program, its JSON lines read as they come."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["node", str(CLIENT / "bin" / "municipality.mjs")],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                self.lines.put({"event": "not-json", "text": line})

    def until(self, wanted: Callable[[dict[str, Any]], bool], timeout_s: float = 90) -> dict[str, Any]:
        for line in self.seen:
            if wanted(line):
                return line
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                raise AssertionError(f"node client: nothing such in {self.seen} (exit {self.process.poll()})")
            with contextlib.suppress(queue.Empty):
                line = self.lines.get(timeout=min(remaining, 0.5))
                self.seen.append(line)
                if wanted(line):
                    return line

    def stop(self) -> tuple[int, str]:
        """Stop it as an operator would (SIGTERM); its exit code and what it wrote to stderr."""
        self.process.terminate()
        code = self.process.wait(timeout=30)
        self.reader.join(timeout=10)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        errors = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return code, errors


@dataclass(frozen=True)
class Run:
    case_id: str
    trace_id: str  # the trace the portal opened the case under
    case: dict[str, Any]  # `hub case show --json`
    node: list[dict[str, Any]]  # every line the Node client printed
    node_exit: int
    node_stderr: str
    forged_ids: dict[str, str]  # kind -> ce_id of the records put on Horw's topic


def _cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0, args
    return out.getvalue()


async def _until(settings: HubSettings, sql: str, *args: object, timeout_s: float = 60) -> None:
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        deadline = time.monotonic() + timeout_s
        while not await conn.fetchval(sql, *args):
            assert time.monotonic() < deadline, f"timed out: {sql} {args}"
            await asyncio.sleep(0.3)
    finally:
        await conn.close()


def _pem_files(folder: Path, name: str) -> tuple[Ed25519PrivateKey, Path, Path]:
    key = Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return key, private, public


def _onboard_horw(settings: HubSettings, folder: Path) -> Path:
    """Horw as an operator onboards it: register, subscribe, register its public key."""
    _cli(
        *("partner", "register", "--id", HORW_OFFICE, "--name", "Gemeinde Horw, Einwohnerdienste"),
        *("--sector", "resident-registration", "--role", "municipality"),
        *("--municipality", "1058", "--canton", "LU"),
    )  # fmt: skip
    _cli(
        *("subscription", "set", HORW_OFFICE, MoveReported.event_type, "--case-type", "relocation"),
        *("--purpose", "register the arrival", "--legal-basis", "RHG Art. 11; SRL 16"),
        *("--field", "person.official_name", "--field", "person.first_name", "--field", "new_address"),
        *("--field", "departure", "--field", "arrival", "--field", "move_date"),
        *("--retention-days", "3650", "--status", "approved"),
    )  # fmt: skip
    _, private, public = _pem_files(folder, NODE_KEY_ID)
    _cli(
        "partner",
        "key",
        "add",
        "--partner",
        HORW_OFFICE,
        "--key-id",
        NODE_KEY_ID,
        "--public-key",
        str(public),
    )
    asyncio.run(
        _until(
            settings,
            "SELECT count(*) FROM registry.partners p JOIN registry.subscriptions s USING (partner_id)"
            " JOIN registry.partner_keys k USING (partner_id)"
            " WHERE p.partner_id = $1 AND p.status = 'active' AND s.status = 'approved' AND k.key_id = $2",
            HORW_OFFICE,
            NODE_KEY_ID,
        )
    )
    return private


def _sdk_move_report(
    case_id: str, key: SigningKey, traceparent: str
) -> tuple[bytes, list[tuple[str, bytes]], bytes]:
    """The portal's report of a move from Kriens to Horw, as a partner using the CloudEvents
    SDK writes it: the SDK's Kafka binding, then the signature over its headers as they go."""
    report = move_report(demo_person(58), departure=KRIENS, arrival=HORW)
    event = CloudEvent(
        {
            "id": str(uuid.uuid4()),
            "source": partner_source(PORTAL),
            "type": MoveReported.event_type,
            "time": dt.datetime.now(dt.UTC),
            "datacontenttype": "application/json",
            "dataschema": MoveReported.dataschema(),
            "businessprocessid": case_id,
            "sigkeyid": key.key_id,
        },
        report.model_dump(mode="json"),
    )
    message = to_binary(event, JSONFormat(), key_mapper=lambda e: e.get_extension("businessprocessid"))
    headers = list(message.headers.items())
    signature = key.private_key.sign(canonical_form(headers, message.value))
    signed = [*headers, ("ce_signature", base64.b64encode(signature)), ("traceparent", traceparent.encode())]
    assert isinstance(message.key, str)
    return message.key.encode(), signed, message.value


async def _send(
    settings: HubSettings, topic: str, records: list[tuple[bytes, list[tuple[str, bytes]], bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all")
    await producer.start()
    try:
        for key, headers, value in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def _answer(answer: Contract) -> Callable[[Delivery], tuple[Contract, ...]]:
    def respond(delivery: Delivery) -> tuple[Contract, ...]:
        delivered = getattr(delivery.data, "event_type_delivered", None)
        return (answer,) if delivered == MoveReported.event_type else ()

    return respond


async def _python_parties(settings: HubSettings, case_id: str, stop: asyncio.Event) -> None:
    """Kriens confirms the departure, the cantonal tax office updates its record."""
    today = dt.date.today()
    answers = {
        KRIENS_OFFICE: _answer(DepartureConfirmed(municipality=KRIENS, confirmed_on=today)),
        TAX_OFFICE: _answer(TaxRecordUpdated(updated_on=today)),
    }
    clients = {pid: local_partner(settings, pid) for pid in answers}
    for client in clients.values():
        await client.start()
    tasks = [
        asyncio.create_task(run_agency(clients[pid], {case_id}, answers[pid], on_refused=lambda _r: None))
        for pid in answers
    ]
    try:
        await stop.wait()
    finally:
        await cancel_all(tasks)
        for client in clients.values():
            await client.stop()


async def _case_until_completed(settings: HubSettings, case_id: str, stop: asyncio.Event) -> None:
    try:
        completed = "SELECT count(*) FROM registry.cases WHERE case_id = $1 AND status = 'completed'"
        await _until(settings, completed, case_id, timeout_s=120)
    finally:
        stop.set()


async def _play(
    settings: HubSettings, case_id: str, opening: tuple[bytes, list[tuple[str, bytes]], bytes]
) -> None:
    stop = asyncio.Event()
    parties = asyncio.create_task(_python_parties(settings, case_id, stop))
    await asyncio.sleep(1)  # the Python parties' consumers join while the report travels
    await _send(settings, ingress_topic(PORTAL), [opening])
    await _case_until_completed(settings, case_id, stop)
    await parties


def _forgeries(records: list[ConsumerRecord[bytes, bytes]], case_id: str) -> tuple[list[Any], dict[str, str]]:
    """Records that land on Horw's topic besides the hub's: the genuine delivery again, the
    same tampered and re-keyed, and Kriens's genuine delivery of the same case."""
    horw = [r for r in records if r.topic == delivery_topic(HORW_OFFICE) and r.key == case_id.encode()]
    kriens = [r for r in records if r.topic == delivery_topic(KRIENS_OFFICE) and r.key == case_id.encode()]
    [genuine] = [r for r in horw if b"sector_pseudonym" in (r.value or b"")]
    [foreign] = [r for r in kriens if b"sector_pseudonym" in (r.value or b"")]

    def with_id(record: ConsumerRecord[bytes, bytes], new_id: str) -> list[tuple[str, bytes]]:
        return [(n, new_id.encode() if n == "ce_id" else v) for n, v in record.headers]

    value = genuine.value or b""
    out = [
        (genuine.key, list(genuine.headers), value),  # a repeat, e.g. after a rebalance
        (genuine.key, with_id(genuine, "forged-1"), value),  # the id changed after signing
        (genuine.key, list(genuine.headers), value.replace(b"Horw", b"Hurw")),  # the data changed
        (b"another-case", list(genuine.headers), value),  # re-keyed
        (foreign.key, list(foreign.headers), foreign.value or b""),  # addressed to Kriens
    ]
    ids = {
        "repeat": _header(genuine.headers, "ce_id"),
        "foreign": _header(foreign.headers, "ce_id"),
    }
    return out, ids


def _header(headers: Any, name: str) -> str:
    [value] = [v for n, v in headers if n == name]
    return bytes(value).decode()


@pytest.fixture(scope="module")
def run(
    node_client: Path, infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp("node-partner")
    with supervised_hub(infrastructure, tmp_path_factory) as hub, pytest.MonkeyPatch.context() as patch:
        settings = hub.settings
        # The hub's own state folder: `hub keys show` reads the delivery key the registry signs with.
        point_cli_at(settings, patch, settings.state_dir)
        horw_key = _onboard_horw(settings, folder)
        portal_key = SigningKey.generate(SDK_KEY_ID)
        (folder / "portal.pub").write_bytes(
            portal_key.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
        _cli(
            "partner",
            "key",
            "add",
            "--partner",
            PORTAL,
            "--key-id",
            SDK_KEY_ID,
            "--public-key",
            str(folder / "portal.pub"),
        )
        asyncio.run(
            _until(settings, "SELECT count(*) FROM registry.partner_keys WHERE key_id = $1", SDK_KEY_ID)
        )
        hub_key = json.loads(_cli("keys", "show", "--json"))

        node = NodeProcess(
            {
                "HUB_BOOTSTRAP": settings.bootstrap_servers(),
                "PARTNER_ID": HORW_OFFICE,
                "PARTNER_KEY_FILE": str(horw_key),
                "PARTNER_KEY_ID": NODE_KEY_ID,
                "HUB_KEY_ID": hub_key["key_id"],
                "HUB_PUBLIC_KEY": hub_key["public_key"],
                "BFS_NUMBER": "1058",
                "KAFKAJS_NO_PARTITIONER_WARNING": "1",
            }
        )
        try:
            node.until(lambda line: line["event"] == "joined")
            case_id = f"eumzug-node-{uuid.uuid4()}"
            trace_id = secrets.token_hex(16)
            opening = _sdk_move_report(case_id, portal_key, f"00-{trace_id}-{secrets.token_hex(8)}-01")
            asyncio.run(_play(settings, case_id, opening))
            node.until(lambda line: line["event"] == "published" and line["case"] == case_id)

            records = [
                *asyncio.run(read_all(settings, delivery_topic(HORW_OFFICE))),
                *asyncio.run(read_all(settings, delivery_topic(KRIENS_OFFICE))),
            ]
            forged, ids = _forgeries(records, case_id)
            asyncio.run(_send(settings, delivery_topic(HORW_OFFICE), forged))
            # Two keys, so maybe two partitions: each is waited for, in whatever order it comes.
            for reason, event_id in (("signature", "forged-1"), ("signature", ids["repeat"]),
                                     ("key", ids["repeat"]), ("recipient", ids["foreign"])):  # fmt: skip
                node.until(lambda line, r=reason, i=event_id: line["event"] == "refused" and
                           (line["reason"], line.get("id")) == (r, i))  # fmt: skip
            node.until(lambda line: line["event"] == "duplicate")
            case = json.loads(_cli("case", "show", case_id, "--json"))
        finally:
            exit_code, errors = node.stop()
        yield Run(case_id, trace_id, case, node.seen, exit_code, errors, ids)


def _lines(run: Run, event: str) -> list[dict[str, Any]]:
    return [line for line in run.node if line["event"] == event]


def test_the_node_partners_milestone_is_accepted_and_on_the_case_under_the_cases_trace(run: Run) -> None:
    assert run.case["status"] == "completed"
    assert run.case["trace_id"] == run.trace_id  # the trace the SDK-built report opened the case under
    [step] = [s for s in run.case["timeline"] if s["service"] == HORW_OFFICE and s["event_type"] == ARRIVAL]
    assert step["trace_id"] == run.trace_id
    [slot] = [p for p in run.case["parties"] if p["slot"] == "arrival-municipality"]
    assert (slot["partner_id"], slot["filled"]) == (HORW_OFFICE, True)
    # Every step of the case shares the trace: the portal's, the hub's, Kriens's, the tax office's, Horw's.
    assert {s["trace_id"] for s in run.case["timeline"]} == {run.trace_id}


def test_the_node_partner_answered_once_passing_the_deliverys_trace_on(run: Run) -> None:
    [delivery] = [d for d in _lines(run, "delivery") if d["case"] == run.case_id]
    assert delivery["delivered"] == MoveReported.event_type
    assert delivery["traceparent"].split("-")[1] == run.trace_id
    [published] = [p for p in _lines(run, "published") if p["case"] == run.case_id]
    assert published["type"] == ARRIVAL
    assert published["traceparent"] == delivery["traceparent"]
    assert run.node_exit == 0, run.node_stderr
    assert not _lines(run, "not-json")
    assert run.node[-1] == {"event": "stopped"}  # SIGTERM: it left its consumer group and stopped


def test_the_node_partner_drops_a_repeated_delivery_and_refuses_forged_re_keyed_and_foreign_ones(
    run: Run,
) -> None:
    assert [d["id"] for d in _lines(run, "duplicate")] == [run.forged_ids["repeat"]]
    refusals = {(r["reason"], r.get("id")) for r in _lines(run, "refused")}
    assert ("signature", "forged-1") in refusals  # the id was changed after signing
    assert ("signature", run.forged_ids["repeat"]) in refusals  # the data was changed after signing
    assert ("key", run.forged_ids["repeat"]) in refusals  # re-keyed
    assert ("recipient", run.forged_ids["foreign"]) in refusals  # Kriens's delivery
    assert len(_lines(run, "published")) == 1  # nothing it refused or dropped was answered


def test_the_node_clients_own_tests_pass_against_the_signing_vectors(node_client: Path) -> None:
    """`npm test`: the normative test vectors of docs/partners/signing.md and the delivery checks."""
    done = subprocess.run(
        ["node", "--test", "test/"], cwd=node_client, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.search(r"^# pass (\d+)$", done.stdout, re.MULTILINE)
    assert passed is not None
    assert int(passed.group(1)) >= 8  # four vectors, the header rules, topics, answer ids, delivery checks
    assert "# fail 0" in done.stdout
