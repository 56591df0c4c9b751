"""The arithmetic and the printed forms of ``hub bench``, apart from the runs that feed them."""

from __future__ import annotations

import math
import random

import pytest

from hub.local.bench_figures import format_table, parse_summary_line, percentile, rate, summary_line


@pytest.mark.parametrize(
    ("p", "expected"),
    [(1, 1.0), (10, 1.0), (11, 2.0), (50, 5.0), (51, 6.0), (95, 10.0), (99, 10.0), (100, 10.0)],
)
def test_percentiles_are_nearest_rank_values_that_occurred(p: float, expected: float) -> None:
    values = [float(n) for n in range(10, 0, -1)]  # order of arrival does not matter

    assert percentile(values, p) == expected


def test_the_p99_of_a_hundred_latencies_is_the_second_largest() -> None:
    values = [float(n) for n in range(1, 101)]
    random.Random(7).shuffle(values)

    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def test_a_single_value_is_every_percentile() -> None:
    assert {percentile([42.0], p) for p in (0.1, 50, 99, 100)} == {42.0}


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_a_percentile_outside_0_to_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], p)


def test_no_values_have_no_percentile() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_a_rate_over_no_time_is_not_a_number() -> None:
    assert rate(10, 4.0) == 2.5
    assert math.isnan(rate(10, 0.0))


def test_a_table_aligns_labels_left_and_figures_right() -> None:
    lines = format_table(("run", "cases/s"), [("saturation", "11.09"), ("half rate", "5.5")])

    assert lines == [
        "run         cases/s",
        "-------------------",
        "saturation    11.09",
        "half rate       5.5",
        "-------------------",
    ]


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="2 cells"):
        format_table(("a", "b", "c"), [("1", "2")])


def test_the_summary_line_is_key_value_with_fixed_decimals() -> None:
    line = summary_line(hop_ratio=0.012345, cases_per_s=11.0871, p99_ms=2345.67)

    assert line == "hop_ratio=0.0123 cases_per_s=11.09 p99_ms=2345.7"
    assert parse_summary_line(line) == {"hop_ratio": 0.0123, "cases_per_s": 11.09, "p99_ms": 2345.7}


def test_a_figure_not_measured_is_nan_never_a_made_up_value() -> None:
    line = summary_line(hop_ratio=None, cases_per_s=11.0, p99_ms=math.nan)

    assert line == "hop_ratio=nan cases_per_s=11.00 p99_ms=nan"
    parsed = parse_summary_line(line)
    assert math.isnan(parsed["hop_ratio"])
    assert math.isnan(parsed["p99_ms"])


@pytest.mark.parametrize(
    "line",
    ["cases_per_s=1 hop_ratio=1 p99_ms=1", "hop_ratio=1 cases_per_s=1", "hop_ratio=x cases_per_s=1 p99_ms=1"],
)
def test_anything_else_is_not_a_summary_line(line: str) -> None:
    with pytest.raises(ValueError, match="summary line"):
        parse_summary_line(line)
