"""``hub bench``'s options: which parts run and with how many events and cases."""

from __future__ import annotations

from typing import Any

import pytest

import hub.local.bench
from hub.cli.main import main
from hub.local.bench_flow import FlowOptions


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``hub bench`` would have run, instead of running it."""
    calls: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 0

    monkeypatch.setattr(hub.local.bench, "main", record)
    return calls


def test_without_a_part_named_both_parts_run_at_full_size(runs: list[dict[str, Any]]) -> None:
    assert main(["bench"]) == 0

    assert runs == [
        {
            "events": 5000,
            "payload_bytes": 400,
            "hop": True,
            "flow": FlowOptions(cases=500, growth=(500, 2000, 8000), warm_up=20, durable=True, replicas=2),
        }
    ]


def test_quick_makes_every_part_small_and_given_options_still_win(runs: list[dict[str, Any]]) -> None:
    main(["bench", "--quick", "--cases", "30", "--no-durable"])

    assert runs[0]["events"] == 200
    assert runs[0]["flow"] == FlowOptions(cases=30, growth=(10, 20), warm_up=5, durable=False)


def test_flow_alone_runs_no_hop_and_hop_alone_no_flow(runs: list[dict[str, Any]]) -> None:
    main(["bench", "--flow", "--growth", "100,400"])
    main(["bench", "--hop"])

    assert (runs[0]["hop"], runs[0]["flow"].growth) == (False, (100, 400))
    assert (runs[1]["hop"], runs[1]["flow"]) == (True, None)


@pytest.mark.parametrize("growth", ["500,x", "500,0", ""])
def test_growth_steps_are_positive_case_counts(growth: str, runs: list[dict[str, Any]]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--growth", growth])
    assert runs == []
