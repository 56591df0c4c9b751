"""Helpers for the embedded-infrastructure tests: they start real child processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.infrastructure import embedded_state_dir


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """The servers these tests start run as another account: their folders live outside
    pytest's temporary tree (see ``embedded_state_dir``)."""
    with embedded_state_dir("hub-test-embedded-") as folder:
        yield folder


def process_exists(pid: int) -> bool:
    """True while ``pid`` runs. A zombie counts as gone: on machines whose init
    does not reap orphans, a dead child may linger as one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.fixture
def gone_within() -> Callable[[list[int], float], bool]:
    """``gone_within(pids, seconds)``: wait until none of ``pids`` runs."""

    def wait(pids: list[int], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while any(process_exists(pid) for pid in pids):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    return wait
