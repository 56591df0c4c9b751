"""Pure helpers of ``hub bench``: percentiles, text tables and the summary line.

No I/O here, so the arithmetic and the formats the figures are printed in are unit-tested
apart from the (slow, noisy) runs that produce them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

# The keys of the summary line, in the order they are printed; runs are compared by them.
SUMMARY_KEYS = ("hop_ratio", "cases_per_s", "p99_ms")
# A figure whose mode was not run is printed as "nan": still a number to float(), never a made-up value.
_FIGURE = r"([0-9]+(?:\.[0-9]+)?|nan)"
_SUMMARY_PATTERN = re.compile(rf"^hop_ratio={_FIGURE} cases_per_s={_FIGURE} p99_ms={_FIGURE}$")
# Digits after the point per key: enough to tell runs apart, not more than the noise allows.
_SUMMARY_DECIMALS = {"hop_ratio": 4, "cases_per_s": 2, "p99_ms": 1}


def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile: a value that really occurred (no interpolation between two).

    ``p`` is in (0, 100]; p=50 of an even count is the lower of the two middle values.
    """
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is in (0, 100], not {p}")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values to take a percentile of")
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def rate(count: int, seconds: float) -> float:
    """``count`` per second; a window of no length has no rate (nan), not an infinite one."""
    return count / seconds if seconds > 0 else math.nan


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Columns as wide as their widest cell: the first left-aligned (a label), the rest right
    (figures); a rule under the header and under the last row."""
    body = [list(row) for row in rows]
    for row in body:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells, the header {len(header)}: {row}")
    widths = [max(len(cells[column]) for cells in [list(header), *body]) for column in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "-" * len(line(["-" * width for width in widths]))
    return [line(header), rule, *(line(cells) for cells in body), rule]


def summary_line(*, hop_ratio: float | None, cases_per_s: float | None, p99_ms: float | None) -> str:
    """``hop_ratio=R cases_per_s=C p99_ms=P``; a figure that was not measured prints as ``nan``."""
    figures = {"hop_ratio": hop_ratio, "cases_per_s": cases_per_s, "p99_ms": p99_ms}
    return " ".join(
        f"{key}={'nan' if value is None or math.isnan(value) else f'{value:.{_SUMMARY_DECIMALS[key]}f}'}"
        for key, value in figures.items()
    )


def parse_summary_line(line: str) -> dict[str, float]:
    """The figures of a summary line (``nan`` where not measured); ValueError if it is not one."""
    match = _SUMMARY_PATTERN.match(line.strip())
    if match is None:
        raise ValueError(f"not a summary line: {line!r}")
    return {key: float(text) for key, text in zip(SUMMARY_KEYS, match.groups(), strict=True)}
