"""How ``hub`` commands print what they read: JSON for scripts, text for people.

Every listing command takes ``--json``; with it, stdout is one JSON document and nothing
else, so scripts can parse it. Without it, each command keeps its own text: one line (or
block) per row, or an aligned table with a header.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def print_json(value: Any) -> None:
    """Indented; non-ASCII as it is (names, reasons); dates and ids that JSON lacks as text."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_rows(
    rows: Sequence[T],
    *,
    as_json: bool,
    line: Callable[[T], str],
    jsonable: Callable[[T], Any] | None = None,
    empty: str | None = None,
) -> None:
    """``rows`` as a JSON list (each through ``jsonable``) or one ``line`` each; ``empty`` is
    printed instead of nothing when there are no rows (never with JSON: ``[]`` says it)."""
    if as_json:
        print_json([jsonable(row) for row in rows] if jsonable else list(rows))
    elif not rows:
        if empty is not None:
            print(empty)
    else:
        for row in rows:
            print(line(row))


def print_table(
    rows: Sequence[T],
    *,
    as_json: bool,
    table: Callable[[Sequence[T]], str],
    jsonable: Callable[[T], Any] | None = None,
    empty: str | None = None,
) -> None:
    """Like ``print_rows``, but the text is one ``table`` of all rows (e.g. ``aligned``)."""
    if as_json or not rows:
        print_rows(rows, as_json=as_json, line=str, jsonable=jsonable, empty=empty)
    else:
        print(table(rows))


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Each column as wide as its widest cell, two spaces apart, no trailing blanks."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )
