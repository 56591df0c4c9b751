"""The exit codes of every ``hub`` command, in one place: ``hub --help`` prints them, the README
lists them, and commands return these names rather than bare numbers."""

from __future__ import annotations

import textwrap
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    NO_ANSWER = 4
    INTERRUPTED = 130


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done (with --wait: the hub applied the command)",
    ExitCode.FAILED: "an error, one line on stderr (no running hub, database or broker away, bad input, "
    "nothing by that id), or a check that failed (hub audit verify: the chain is broken; "
    "hub vault rotate-master-key: keys left to re-wrap, run it again)",
    ExitCode.USAGE: "the command line itself is wrong (unknown command, missing or invalid option)",
    ExitCode.REFUSED: "--wait: the hub refused the command; the reason is printed (and kept in hub dlq list)",
    ExitCode.NO_ANSWER: "--wait: neither applied nor refused within --timeout; it may still be applied",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def epilog() -> str:
    """The exit codes as ``hub --help`` ends with them."""
    width = max(len(str(int(code))) for code in MEANINGS)
    hanging = " " * (width + 4)
    lines = [
        textwrap.fill(meaning, 88, initial_indent=f"  {int(code):>{width}}  ", subsequent_indent=hanging)
        for code, meaning in MEANINGS.items()
    ]
    return "exit codes:\n" + "\n".join(lines)
