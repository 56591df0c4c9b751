"""The operator's first contact with the hub is its command line: it names its version, and
every command and option says what it is for."""

from __future__ import annotations

import argparse
import re
from importlib import metadata

import pytest

from hub.cli.main import DISTRIBUTION, main, parser


def _options_without_help(command: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += _options_without_help(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_and_argument_says_what_it_is_for() -> None:
    assert _options_without_help(parser(), "hub") == []


def test_the_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out.strip()
    assert printed == f"hub {metadata.version(DISTRIBUTION)}"
    assert re.fullmatch(r"hub \d+\.\d+\.\d+.*", printed)
