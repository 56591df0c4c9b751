"""A service started while PostgreSQL is down waits for it (``HUB_STARTUP_WAIT_S``).

The chaos runs restart PostgreSQL while services are restarted: a service that started in
that window exited at once ("cannot reach PostgreSQL") and had to be restarted again. The
database here is the real one behind a TCP forwarder on a port nobody listens on until the
test opens it, as a database that is still coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from contracts import DepartureConfirmed
from hub.errors import DatabaseUnavailable
from hub.local.embedded.ports import free_port
from hub.runtime.consumer import Route
from hub.runtime.service import ServiceContext, ServiceDefinition, ServiceRuntime
from hub.runtime.settings import HubSettings

pytestmark = pytest.mark.asyncio

DOWN_S = 1.5  # how long the database stays unreachable after the service started


def _via_port(settings: HubSettings, port: int, wait_s: float) -> HubSettings:
    parts = urlsplit(settings.database_dsn())
    netloc = f"{parts.netloc.rpartition('@')[0]}@127.0.0.1:{port}"
    return HubSettings.model_validate(
        {
            **settings.model_dump(),
            "database_url": urlunsplit(parts._replace(netloc=netloc)),
            "startup_wait_s": wait_s,
        }
    )


@contextlib.asynccontextmanager
async def _forwarder(port: int, upstream: tuple[str, int]) -> AsyncIterator[None]:
    """From now on, ``port`` leads to the database."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


def _runtime(settings: HubSettings) -> ServiceRuntime:
    topic = f"test.startup.{uuid.uuid4().hex[:8]}"

    async def ignore(*_: object) -> None:
        pass

    def routes(_ctx: ServiceContext) -> list[Route]:
        return [
            Route(topic, f"hub.test.startup.{uuid.uuid4().hex[:8]}", {DepartureConfirmed.event_type: ignore})
        ]

    definition = ServiceDefinition(
        name="startup_test",
        migrations_package="tests.integration.runtime.shutdown_migrations",
        topics=(topic,),
        routes=routes,
    )
    return ServiceRuntime(definition, settings)


def _upstream(settings: HubSettings) -> tuple[str, int]:
    parts = urlsplit(settings.database_dsn())
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


async def test_a_service_started_while_the_database_is_down_waits_for_it(hub_settings: HubSettings) -> None:
    port = free_port()
    runtime = _runtime(_via_port(hub_settings, port, wait_s=30.0))
    starting = asyncio.create_task(runtime.start())
    await asyncio.sleep(DOWN_S)
    assert not starting.done()  # still waiting, not given up
    async with _forwarder(port, _upstream(hub_settings)):
        await asyncio.wait_for(starting, timeout=60)
        try:
            checks = await runtime.readiness()
            assert checks["ok_database"] is True
            assert runtime.pool is not None
            async with runtime.pool.acquire() as conn:  # migrated through the forwarder
                assert await conn.fetchval("SELECT count(*) FROM effects") == 0
        finally:
            await runtime.stop()


async def test_a_database_that_stays_down_ends_the_start_after_the_wait(hub_settings: HubSettings) -> None:
    runtime = _runtime(_via_port(hub_settings, free_port(), wait_s=0.5))
    with pytest.raises(DatabaseUnavailable, match="cannot reach PostgreSQL"):
        await asyncio.wait_for(runtime.start(), timeout=30)
