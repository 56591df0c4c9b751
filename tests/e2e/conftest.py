"""A running hub (three service processes) on the session's infrastructure."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from hub.runtime.settings import HubSettings
from tests.e2e.support import supervised_hub
from tests.fixtures.infrastructure import Infrastructure


@contextlib.contextmanager
def running_hub(
    infrastructure: Infrastructure,
    tmp_path_factory: pytest.TempPathFactory,
    extra_env: dict[str, str] | None = None,
) -> Iterator[HubSettings]:
    """Its own database, so cases and partners of one module do not meet another's; only
    its settings (``supervised_hub`` also gives the supervisor)."""
    with supervised_hub(infrastructure, tmp_path_factory, extra_env) as hub:
        yield hub.settings
