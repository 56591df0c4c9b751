"""What ``hub bench --flow`` prints about its phases and hubs, and how it plans its cases."""

from __future__ import annotations

import math
import random

from hub.local.bench_flow import (
    DURABILITY_SETTINGS,
    FlowOptions,
    FlowReport,
    HubResult,
    PhaseResult,
    durability_table,
    growth_table,
    scale_out_table,
)
from hub.local.chaos.scenario import build_stream


def _phase(name: str, cases: int, history: int, seconds: float) -> PhaseResult:
    return PhaseResult(
        name=name,
        cases=cases,
        history=history,
        offered_per_s=math.inf,
        streamed_s=0.5,
        last_completion_s=seconds - 1,
        seconds=seconds,
        latencies_ms=(100.0,) * cases,
    )


def test_the_growth_table_compares_every_step_with_the_first() -> None:
    lines = growth_table([_phase("growth 500", 500, 1020, 50.0), _phase("growth 2000", 2000, 1520, 250.0)])

    assert lines[1].split() == ["cases", "history", "seconds", "cases/s", "ms/case", "vs", "first"]
    assert lines[3].split() == ["500", "1020", "50.0", "10.00", "100.0", "1.00"]
    assert lines[4].split() == ["2000", "1520", "250.0", "8.00", "125.0", "0.80"]


def test_the_durability_table_names_every_setting_of_each_hub() -> None:
    settings = dict.fromkeys(DURABILITY_SETTINGS, "on") | {"wal_level": "replica"}
    report = FlowReport(
        HubResult("as `hub up` runs it", settings | {"fsync": "off"}, [_phase("saturation", 500, 20, 50.0)]),
        HubResult("fsync=on, synchronous_commit=on", settings, [_phase("saturation", 500, 20, 62.5)]),
    )

    lines = durability_table(report)

    assert all(name in lines[1] for name in DURABILITY_SETTINGS)
    assert lines[3].split()[-6:] == ["off", "on", "on", "replica", "500", "10.00"]
    assert lines[4].split()[-6:] == ["on", "on", "on", "replica", "500", "8.00"]


def test_a_hub_takes_its_warm_up_both_runs_and_every_growth_step() -> None:
    assert FlowOptions(cases=500, growth=(500, 2000, 8000), warm_up=20).cases_per_hub() == 11_520


def test_streams_sent_one_after_another_move_persons_the_hub_has_not_met() -> None:
    rng = random.Random(3)
    first = build_stream(rng, 5, 0)
    second = build_stream(rng, 5, 0, first_serial=6)

    # Each case's person has an AHVN13 of its own: the second stream repeats none of the first's.
    vns = {case.draft.value.split(b'"vn":"')[1][:13] for case in first.cases + second.cases}
    assert len(vns) == 10
    assert len({case.case_id for case in first.cases + second.cases}) == 10


def test_the_scale_out_table_sets_the_scaled_hubs_rate_beside_one_process_per_service() -> None:
    one = HubResult("as `hub up` runs it", {}, [_phase("saturation", 500, 20, 20.0)])
    two = HubResult("2 processes per service", {}, [_phase("saturation", 500, 20, 16.0)])
    lines = scale_out_table(FlowReport(one, None, two))

    assert lines[1].split() == ["processes", "per", "service", "cases", "cases/s", "vs", "one"]
    assert lines[3].split() == ["1", "500", "25.00", "1.00"]
    assert lines[4].split() == ["2", "500", "31.25", "1.25"]
