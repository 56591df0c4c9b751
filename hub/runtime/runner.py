"""One service as one process: ``hub service run NAME``.

SIGTERM or SIGINT stops it cleanly: subscribers stop taking records, in-flight work
finishes and commits, the relay publishes what it holds, then connections close.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from hub.runtime.health import HealthServer
from hub.runtime.logs import configure_logging
from hub.runtime.service import ServiceRuntime
from hub.runtime.settings import HubSettings
from hub.runtime.telemetry import setup_tracing
from hub.security.secrets import require_secrets

log = logging.getLogger(__name__)


async def run_service(name: str, settings: HubSettings) -> None:
    from services import load_definition

    definition = load_definition(name)
    # Refused before anything starts (the runtime checks again for services run in-process).
    require_secrets(settings, definition.secrets(settings))
    provider = setup_tracing(name, settings)
    runtime = ServiceRuntime(definition, settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runtime.request_stop)
    health = HealthServer(
        runtime.readiness, metrics=runtime.metrics, host=settings.health_host, port=settings.health_port or 0
    )
    try:
        await runtime.start()
        await health.start()
        log.info("%s ready; health on %s:%d", name, settings.health_host, health.port)
        await runtime.wait()
    finally:
        await health.stop()
        await runtime.stop()
        provider.shutdown()


def main(name: str) -> None:
    settings = HubSettings()
    configure_logging(settings.log_level, service=name, json_lines=settings.log_format == "json")
    asyncio.run(run_service(name, settings))
