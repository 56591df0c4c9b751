"""No embedded child outlives the hub: ordered stop, failed starts, a killed parent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import hub.local.embedded
from hub.local.embedded import EmbeddedError, EmbeddedKafka, EmbeddedPostgres, EmbeddedStack, SmtpSink
from hub.local.embedded.process import descendants

pytestmark = pytest.mark.integration

GoneWithin = Callable[[list[int], float], bool]
REPO_ROOT = Path(hub.local.embedded.__file__).resolve().parents[3]

PARENT_SCRIPT = """
import sys, time
from pathlib import Path
from hub.local.embedded import EmbeddedStack
stack = EmbeddedStack(Path(sys.argv[1]))
stack.start()
print(stack.kafka.pid, stack.postgres.pid, stack.smtp.pid, flush=True)
time.sleep(60)
"""


def _parts(stack: EmbeddedStack) -> tuple[EmbeddedKafka, EmbeddedPostgres, SmtpSink]:
    assert stack.kafka is not None
    assert stack.postgres is not None
    assert stack.smtp is not None
    return stack.kafka, stack.postgres, stack.smtp


def _pids(stack: EmbeddedStack) -> list[int]:
    """The three children and PostgreSQL's own processes."""
    pids = [pid for part in _parts(stack) if (pid := part.pid) is not None]
    assert len(pids) == 3
    return pids + descendants(pids[1])


def test_stack_stop_leaves_no_child_running(tmp_path: Path, gone_within: GoneWithin) -> None:
    with EmbeddedStack(tmp_path) as stack:
        pids = _pids(stack)
        assert len(pids) > 3
        assert {p.name for p in tmp_path.iterdir()} >= {"kafka", "postgres", "smtp"}

    assert gone_within(pids, 0.0)


def test_stack_stop_tolerates_parts_that_already_died(tmp_path: Path, gone_within: GoneWithin) -> None:
    stack = EmbeddedStack(tmp_path)
    stack.start()
    pids = _pids(stack)
    kafka, postgres, _smtp = _parts(stack)
    kafka.kill()
    postgres.kill()

    stack.stop()
    stack.stop()

    assert gone_within(pids, 0.0)


def test_failed_start_stops_the_parts_already_started(tmp_path: Path, gone_within: GoneWithin) -> None:
    stack = EmbeddedStack(tmp_path)
    _kafka, _postgres, smtp = _parts(stack)
    taken = socket.create_server(("127.0.0.1", smtp.port))  # the SMTP sink's port is taken
    with taken, pytest.raises(EmbeddedError, match="SMTP sink cannot use"):
        stack.start()

    started = [pid for part in _parts(stack) if (pid := part.pid) is not None]
    assert len(started) == 3
    assert gone_within(started, 0.0)


def test_children_die_with_a_killed_parent_and_leave_reusable_state(
    tmp_path: Path, gone_within: GoneWithin
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        children = [int(pid) for pid in line.split()]
        assert len(children) == 3, f"parent printed {line!r}"
        children += descendants(children[1])
        assert all(os.getpgid(pid) != os.getpgid(parent.pid) for pid in children[:3])
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout:
            parent.stdout.close()

    assert gone_within(children, 5.0), "children survived their SIGKILLed parent"
    postgres = EmbeddedPostgres(tmp_path / "postgres")
    postgres.start()  # despite the stale postmaster.pid of the killed server
    postgres.stop()


def test_child_outlives_the_thread_that_started_it(tmp_path: Path) -> None:
    # Linux's parent-death signal follows the *thread* that forked the child.
    kafka = EmbeddedKafka(tmp_path / "kafka")
    starter = threading.Thread(target=kafka.start)
    starter.start()
    starter.join()
    try:
        time.sleep(0.2)
        assert kafka.running
    finally:
        kafka.stop()


def test_child_runs_in_its_own_process_group(tmp_path: Path) -> None:
    # So a Ctrl-C in the terminal reaches only the hub, which stops children in order.
    kafka = EmbeddedKafka(tmp_path / "kafka")
    kafka.start()
    try:
        assert kafka.pid is not None
        assert os.getpgid(kafka.pid) == kafka.pid != os.getpgrp()
    finally:
        kafka.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(kafka.pid, 0)
