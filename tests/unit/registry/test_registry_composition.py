"""The registry's composition root hands every route its unit of work, with the keys it loaded."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from hub.errors import ConfigurationError
from hub.runtime import topics
from hub.runtime.service import ServiceContext
from hub.runtime.settings import HubSettings
from hub.vault.crypto import KEY_BYTES, MasterKey
from services.registry import bootstrap, refusals
from services.registry.adapters.postgres import PostgresRegistry
from services.registry.adapters.postgres.lookup_notices import LookupNotices
from services.registry.lookups import LookupCache

NO_POOL: Any = None  # building routes opens nothing: the pool is only handed on


def context(tmp_path: Path, **settings: Any) -> ServiceContext:
    master = MasterKey(secrets.token_bytes(KEY_BYTES))
    return ServiceContext("registry", HubSettings(state_dir=tmp_path, **settings), NO_POOL, master)


def test_every_route_works_through_the_registrys_adapter_with_the_keys_of_the_context(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    routes = bootstrap.routes(ctx)
    adapters = {id(route.unit_of_work) for route in routes}
    assert len(adapters) == 1
    registry = routes[0].unit_of_work
    assert isinstance(registry, PostgresRegistry)
    assert registry.master_key is ctx.master_key
    assert (tmp_path / "secrets" / "audit.key").exists()  # created for a one-machine hub
    [ingress] = [route for route in routes if route.topic == topics.INGRESS]
    assert isinstance(ingress.on_refused, refusals.RefusalAudit)
    assert [route.on_refused for route in routes if route is not ingress] == [None] * (len(routes) - 1)


def test_without_its_audit_key_file_the_registry_has_no_routes(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no audit key"):
        bootstrap.routes(context(tmp_path, audit_key_file=tmp_path / "missing.key"))


def test_a_service_runtime_shares_one_cache_between_its_routes_and_its_listener(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    definition = bootstrap.definition()
    registries = {route.unit_of_work for route in definition.routes(ctx)}
    assert len(registries) == 1
    [registry] = registries
    assert isinstance(registry, PostgresRegistry)
    assert isinstance(registry.lookups, LookupCache)
    [listener] = [
        w.__self__ for w in definition.workers(ctx) if isinstance(getattr(w, "__self__", None), LookupNotices)
    ]
    assert listener.cache is registry.lookups
    # Each runtime loads its own definition: nothing is held between them.
    [other] = {route.unit_of_work for route in bootstrap.definition().routes(ctx)}
    assert isinstance(other, PostgresRegistry)
    assert other.lookups is not registry.lookups


def test_routes_built_apart_from_a_runtime_read_everything_from_the_database(tmp_path: Path) -> None:
    """No listener would tell their cache of changes made elsewhere."""
    ctx = context(tmp_path)
    assert {getattr(route.unit_of_work, "lookups", "?") for route in bootstrap.routes(ctx)} == {None}
    assert not any(isinstance(getattr(w, "__self__", None), LookupNotices) for w in bootstrap.workers(ctx))
