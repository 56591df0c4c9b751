"""``hub bench --flow --quick`` as a user runs it: two hubs of its own, whole cases through
them, figures printed. Speed is never asserted, only that every figure is there and is a number."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

from hub.local.bench_figures import parse_summary_line
from hub.local.bench_flow import DURABILITY_SETTINGS

HUB = [sys.executable, "-m", "hub"]
SETTINGS_LINE = re.compile(" ".join(rf"{name}=\S+" for name in DURABILITY_SETTINGS))


def _settings(line: str) -> dict[str, str]:
    found = SETTINGS_LINE.search(line)
    assert found is not None, line
    return dict(pair.split("=", 1) for pair in found.group(0).split())


def test_a_quick_flow_run_prints_durability_and_ends_with_the_summary_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {"HUB_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [
            *HUB,
            "bench",
            "--flow",
            "--quick",
            "--cases",
            "10",
            "--growth",
            "5,10",
            "--warm-up",
            "1",
            "--replicas",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = parse_summary_line(lines[-1])
    assert math.isnan(figures["hop_ratio"])  # the hop was not run
    assert 0 < figures["cases_per_s"] < math.inf
    assert 0 < figures["p99_ms"] < math.inf
    # What PostgreSQL reported, read back with SHOW: the embedded default, then the durable hub.
    default_hub = _settings(next(line for line in lines if line.startswith("PostgreSQL of the hub:")))
    durable_hub = _settings(next(line for line in lines if line.startswith("PostgreSQL of the durable hub")))
    assert default_hub["fsync"] == "off"
    assert durable_hub["fsync"] == "on"
    assert durable_hub["synchronous_commit"] == "on"
    assert set(default_hub) == set(durable_hub) == set(DURABILITY_SETTINGS)
    assert any(line.startswith("half rate:") and "p99=" in line for line in lines)
    growth = lines.index(next(line for line in lines if line.startswith("cost growth:")))
    assert [line.split()[0] for line in lines[growth + 3 : growth + 5]] == ["5", "10"]
