"""A running hub (three service processes) on the session's infrastructure."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from hub.settings import HubSettings
from hub.supervisor import Supervisor
from tests.fixtures.infrastructure import Infrastructure, fresh_database, settings_for


@contextlib.contextmanager
def running_hub(
    infrastructure: Infrastructure,
    tmp_path_factory: pytest.TempPathFactory,
    extra_env: dict[str, str] | None = None,
) -> Iterator[HubSettings]:
    """Its own database, so cases and partners of one module do not meet another's."""
    with fresh_database(infrastructure) as database_url:
        settings = settings_for(infrastructure, database_url, tmp_path_factory.mktemp("hub"))
        supervisor = Supervisor(settings, extra_env=extra_env or {})
        endpoints = supervisor.start()
        try:
            yield endpoints.apply(settings)
        finally:
            supervisor.stop()
