"""Markers follow the folder a test lives in, so `-m unit` or `-m "not e2e"` just work."""

from __future__ import annotations

from pathlib import Path

import pytest

_MARKER_BY_FOLDER = {
    "unit": "unit",
    "integration": "integration",
    "contract": "integration",
    "e2e": "e2e",
    "chaos": "chaos",
}

pytest_plugins = ["tests.fixtures.infrastructure", "tests.fixtures.tracing", "tests.fixtures.vault"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        folder = Path(str(item.fspath)).relative_to(root).parts[0]
        marker = _MARKER_BY_FOLDER.get(folder)
        if marker is not None:
            item.add_marker(getattr(pytest.mark, marker))
