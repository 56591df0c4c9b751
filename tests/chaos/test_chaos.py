"""The chaos suite in its short form (``make chaos`` runs the long one).

Relocation cases stream through a hub of this test's own (its own broker, PostgreSQL and
SMTP sink in a temporary folder: the session's shared infrastructure is never paused or
restarted) while each service is SIGKILLed once, the broker is frozen once and
PostgreSQL restarts once; then nothing may be lost or duplicated and exactly the poison
records may be dead-lettered.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.local.chaos import ChaosConfig, ChaosReport, run_chaos
from hub.local.chaos.faults import plan_faults
from hub.local.chaos.scenario import build_stream
from hub.local.demo import PORTAL
from hub.runtime.topics import ingress_topic
from services import SERVICE_NAMES
from tests.fixtures.infrastructure import embedded_state_dir

SEED = int(os.environ.get("CHAOS_SEED", "20261126"))  # CHAOS_SEED=... repeats another run
CASES = 150
POISONS = 8
FINAL_LINE = re.compile(
    r"^cases=(\d+) kills=(\d+) pauses=(\d+) db_restarts=(\d+)"
    r" lost=(\d+) duplicated=(\d+) dead_lettered=(\d+)$"
)


@pytest.fixture(scope="module")
def report() -> Iterator[ChaosReport]:
    with embedded_state_dir("hub-test-chaos-") as state:
        yield _run(state / "hub")


def _run(state_dir: Path) -> ChaosReport:
    config = ChaosConfig(
        state_dir=state_dir,
        cases=CASES,
        seed=SEED,
        kills_per_service=1,
        pauses=1,
        db_restarts=1,
        poisons=POISONS,
        rate_per_s=10.0,
        settle_timeout_s=240.0,
        stall_timeout_s=60.0,
    )
    started = time.monotonic()
    result = run_chaos(config, lambda line: print(f"[{time.monotonic() - started:6.1f}s] {line}"))
    print("\n".join(result.lines()))
    return result


def _explain(report: ChaosReport) -> str:
    return f"seed {SEED}:\n" + "\n".join(report.lines())


def test_every_fault_was_injected(report: ChaosReport) -> None:
    assert report.kills == dict.fromkeys(SERVICE_NAMES, 1), _explain(report)
    assert report.pauses == 1
    assert report.db_restarts == 1


def test_every_case_completed_and_nothing_was_lost_or_duplicated(report: ChaosReport) -> None:
    assert report.settled, _explain(report)
    assert report.tally.lost == 0, _explain(report)
    assert report.tally.duplicated == 0, _explain(report)
    assert report.tally.findings == [], _explain(report)


def test_the_dead_letter_topics_hold_exactly_the_poison_records(report: ChaosReport) -> None:
    assert report.tally.dead_lettered == POISONS, _explain(report)
    letters = [letter for letters in report.observed.kafka_dead_letters.values() for letter in letters]
    # The portal sent every poison record on its own ingress topic; all land in hub.ingress-dlt.
    assert {letter.original[0] for letter in letters} == {ingress_topic(PORTAL)}
    assert {topic for topic, letters in report.observed.kafka_dead_letters.items() if letters} == {
        "hub.ingress-dlt"
    }


def test_the_effects_were_counted_in_every_place(report: ChaosReport) -> None:
    """The verdict rests on real counts: deliveries in the outbox and on the topics, notices
    in the table, the inboxes and the SMTP sink (five emails per case)."""
    seen = report.observed
    assert sum(len(ids) for ids in seen.db_deliveries.values()) == CASES * 6
    assert sum(len(ids) for ids in seen.kafka_deliveries.values()) == CASES * 6
    assert len(seen.inbox) == CASES * 5
    assert sum(seen.emails.values()) == CASES * 5
    assert list(seen.case_status.values()).count("completed") == CASES


def test_the_report_ends_with_the_line_the_issue_asks_for(report: ChaosReport) -> None:
    match = FINAL_LINE.match(report.lines()[-1])
    assert match is not None, report.lines()[-1]
    assert [int(n) for n in match.groups()] == [CASES, 3, 1, 1, 0, 0, POISONS]


def test_a_run_is_repeatable_from_its_seed() -> None:
    """The same seed plans the same cases, poison records and fault moments."""

    def plan(seed: int) -> tuple[list[str], list[str]]:
        rng = random.Random(seed)
        stream = build_stream(rng, 20, 4)
        faults = plan_faults(
            rng, window_s=60, services=SERVICE_NAMES, kills_per_service=2, pauses=2, db_restarts=1
        )
        return [case.case_id for case in stream.cases], [fault.describe() for fault in faults]

    assert plan(SEED) == plan(SEED)
    assert plan(SEED) != plan(SEED + 1)
