"""The `hub` command as a user runs it: its own embedded infrastructure, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

HUB = [sys.executable, "-m", "hub"]


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {**env, "HUB_STATE_DIR": str(state_dir)}


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_demo_json_prints_a_completed_case_with_one_trace(tmp_path: Path) -> None:
    done = subprocess.run(
        [*HUB, "demo", "--json", "--quiet"], env=_env(tmp_path), capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    case = json.loads(done.stdout)
    assert case["status"] == "completed"
    assert case["case_id"].startswith("eumzug-")
    assert len(case["trace_id"]) == 32
    steps = case["timeline"]
    assert {"identity", "registry", "notifications"} <= {step["service"] for step in steps}
    for step in steps:
        assert set(step) >= {"service", "event_type", "time", "trace_id"}
        assert step["trace_id"] == case["trace_id"]
    assert not (tmp_path / "endpoints.json").exists()


def test_up_runs_until_interrupted_and_leaves_nothing_running(tmp_path: Path) -> None:
    with subprocess.Popen(
        [*HUB, "up"], env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as hub:
        children = _run_up_session(hub, tmp_path)
    deadline = time.monotonic() + 10
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(children) == []


def _run_up_session(hub: subprocess.Popen[str], tmp_path: Path) -> list[int]:
    try:
        assert hub.stdout is not None
        banner = hub.stdout.readline()
        assert banner.startswith("hub is up"), banner
        children = [p.pid for p in psutil.Process(hub.pid).children(recursive=True)]
        assert len(children) >= 6  # broker, PostgreSQL (+ its workers), SMTP sink, three services

        unknown = subprocess.run(
            [*HUB, "case", "show", "no-such-case"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unknown.returncode == 1
        assert unknown.stderr.strip() == "hub: error: no case no-such-case"  # one line, no traceback

        _subscriptions_are_managed_through_the_cli(tmp_path)
        _demo_runs_on_the_hub_that_is_up_and_leaves_its_case_there(tmp_path)

        hub.send_signal(signal.SIGINT)
        assert hub.wait(timeout=60) == 0
    finally:
        if hub.poll() is None:
            hub.kill()
    return children


def test_case_show_without_a_running_hub_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*HUB, "case", "show", "x"], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("hub: error: no running hub found")


@pytest.mark.parametrize("command", [["service", "run", "nope"], ["nope"]])
def test_unknown_commands_are_refused_with_usage(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run([*HUB, *command], env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "usage: hub" in done.stderr


def _demo_runs_on_the_hub_that_is_up_and_leaves_its_case_there(tmp_path: Path) -> None:
    """`hub demo` while `hub up` runs plays its case on that hub, leaves the hub running and
    the case in it: the operator commands read it afterwards."""
    demo = subprocess.run(
        [*HUB, "demo", "--json", "--quiet"], env=_env(tmp_path), capture_output=True, text=True, timeout=180
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    case_id = json.loads(demo.stdout)["case_id"]
    assert (tmp_path / "endpoints.json").exists()

    def hub(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*HUB, *argv], env=_env(tmp_path), capture_output=True, text=True, timeout=60)

    shown = hub("case", "show", case_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "completed"
    verified = hub("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    disclosed = hub("audit", "subject", "--case", case_id, "--json")
    assert disclosed.returncode == 0, disclosed.stderr
    assert {row["partner_id"] for row in json.loads(disclosed.stdout)} >= {
        "CH/MUN/1059/einwohnerdienste",
        "CH/MUN/1061/einwohnerdienste",
    }
    escalation = hub("demo", "--variant", "escalation", "--quiet")
    assert escalation.returncode == 1
    assert escalation.stderr.count("\n") == 1
    assert "deadline of seconds" in escalation.stderr


def _subscriptions_are_managed_through_the_cli(tmp_path: Path) -> None:
    """`hub subscription set` travels as an event on hub.admin; `list` shows the result."""
    subprocess.run(
        [
            *HUB,
            "subscription",
            "set",
            "CH/CAN/LU/gvl",
            "ch.lu.hub.case.completed.v1",
            "--case-type",
            "building-permit",
            "--purpose",
            "close the insurance file",
            "--legal-basis",
            "GVG LU § 3",
            "--field",
            "completed_at",
            "--retention-days",
            "90",
            "--status",
            "approved",
        ],
        env=_env(tmp_path),
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while True:
        listed = subprocess.run(
            [*HUB, "subscription", "list", "--json"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        rows = json.loads(listed.stdout)
        mine = [
            r for r in rows if r["partner_id"] == "CH/CAN/LU/gvl" and r["event_type"].endswith("completed.v1")
        ]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert mine, "the subscription command did not reach the registry"
    assert mine[0]["status"] == "approved"
    assert mine[0]["fields"] == ["completed_at"]
    assert mine[0]["scope"] == "party"  # only the cases it is a party to, unless it says all-cases
    catalog = subprocess.run(
        [*HUB, "catalog", "list", "--json"], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    entries = {row["event_type"]: row for row in json.loads(catalog.stdout)}
    assert entries["ch.lu.hub.relocation.move-reported.v1"]["sensitivity"] == "secret"
    assert entries["ch.lu.hub.relocation.move-reported.v1"]["publisher_roles"] == ["portal"]
