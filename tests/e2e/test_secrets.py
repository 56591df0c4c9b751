"""A service outside a local set-up never invents a key: without its secrets it refuses to
start, in one line naming what is missing, before it connects to anything. The secrets are
made once, explicitly, with ``hub secrets create DIR``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

HUB = [sys.executable, "-m", "hub"]
# Nothing listens there: a service that got past its secrets would fail on these instead.
UNREACHABLE = {
    "HUB_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    "HUB_DATABASE_URL": "postgresql://hub@127.0.0.1:9/hub",
    "HUB_STARTUP_WAIT_S": "1",
}


def _env(state_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {**env, "HUB_STATE_DIR": str(state_dir), **UNREACHABLE, **settings}


def _run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HUB, *argv], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("service", "given", "missing"),
    [
        ("notifications", {}, "the vault master key (HUB_MASTER_KEY_FILE"),
        ("identity", {"HUB_MASTER_KEY_FILE": "master.key"}, "the pseudonym secret (HUB_PSEUDONYM_KEY_FILE"),
        ("registry", {"HUB_MASTER_KEY_FILE": "master.key"}, "the audit chain's key (HUB_AUDIT_KEY_FILE"),
        (
            "registry",
            {"HUB_MASTER_KEY_FILE": "master.key", "HUB_AUDIT_KEY_FILE": "audit.key"},
            "the hub's signing key (HUB_SIGNING_KEY_FILE",
        ),
    ],
)
def test_a_service_without_its_secrets_refuses_to_start_in_one_line(
    tmp_path: Path, service: str, given: dict[str, str], missing: str
) -> None:
    secrets = tmp_path / "secrets-made"
    assert _run("secrets", "create", str(secrets), env=_env(tmp_path)).returncode == 0
    files = {name: str(secrets / value) for name, value in given.items()}
    done = _run("service", "run", service, env=_env(tmp_path / "state", **files))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"hub: error: missing secret: {missing}")
    assert "hub secrets create DIR" in done.stderr
    assert not (tmp_path / "state" / "secrets").exists()  # nothing was invented


def test_created_secrets_let_a_service_past_the_check_to_the_infrastructure(tmp_path: Path) -> None:
    made = tmp_path / "secrets"
    created = _run("secrets", "create", str(made), env=_env(tmp_path))
    assert created.returncode == 0, created.stderr
    assert sorted(Path(line).name for line in created.stdout.split()) == [
        "audit.key",
        "hub-signing.key",
        "hub-signing.key.pub",
        "master.key",
        "pseudonym.key",
    ]
    for name in ("master.key", "pseudonym.key", "audit.key", "hub-signing.key"):
        assert stat.S_IMODE((made / name).stat().st_mode) == 0o600
    again = _run("secrets", "create", str(made), env=_env(tmp_path))
    assert again.returncode == 1
    assert "nothing was written" in again.stderr
    keys = {
        "HUB_MASTER_KEY_FILE": str(made / "master.key"),
        "HUB_AUDIT_KEY_FILE": str(made / "audit.key"),
        "HUB_SIGNING_KEY_FILE": str(made / "hub-signing.key"),
    }
    done = _run("service", "run", "registry", env=_env(tmp_path / "state", **keys))
    assert done.returncode != 0
    assert "missing secret" not in done.stderr
    assert "PostgreSQL" in done.stderr  # it went on to connect, and found nothing there
