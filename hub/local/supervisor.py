"""Runs the whole hub on one machine: infrastructure (embedded or external) plus the
three services, each as its own process, and stops everything in reverse order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hub.errors import ConfigurationError
from hub.local.embedded.ports import free_port
from hub.local.embedded.process import die_with_parent
from hub.local.embedded.stack import EmbeddedStack
from hub.local.provisioning import create_hub_key, prepare_demo_database, provision_partner_keys
from hub.runtime.endpoints import Endpoints, write_endpoints
from hub.runtime.settings import HubSettings

T = TypeVar("T")
Progress = Callable[[str], None]
READY_TIMEOUT_S = 90.0


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    health_port: int
    log_file: Path

    def readiness(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2) as answer:
                return dict(json.load(answer))
        except urllib.error.HTTPError as error:
            return dict(json.load(error))
        except (OSError, ValueError):
            return None


class Supervisor:
    def __init__(
        self,
        settings: HubSettings,
        *,
        services: Sequence[str] | None = None,
        progress: Progress = lambda _line: None,
        extra_env: dict[str, str] | None = None,
        replicas: int = 1,
    ) -> None:
        from services import SERVICE_NAMES

        if replicas < 1:
            raise ConfigurationError("replicas must be at least 1")
        # Each service runs this many processes, as a Deployment's pods would: they share its
        # consumer groups (the partitions are split between them) and its schema.
        self.replicas = replicas

        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.services = list(services if services is not None else SERVICE_NAMES)
        self._progress = progress
        self._extra_env = extra_env or {}
        self.stack: EmbeddedStack | None = None
        self.endpoints: Endpoints | None = None
        self.processes: dict[str, ServiceProcess] = {}
        # Only the endpoints file this supervisor wrote is its to remove: one that could not
        # start (another hub runs in the same state directory) must leave that hub's alone.
        self._wrote_endpoints = False

    def start(self) -> Endpoints:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.endpoints = self._start_infrastructure()
            write_endpoints(self.state_dir, self.endpoints)
            self._wrote_endpoints = True
            running = self.running_settings()
            # The hub's key exists before the registry starts (it would create it too).
            create_hub_key(running)
            if self.settings.demo_partners:
                prepare_demo_database(running, self._progress)
            for name in self.services:
                self.start_service(name)
            self.wait_until_ready()
            # Once the first replicas made the local secrets, the others read the same ones.
            further = [replica_name(name, n) for n in range(2, self.replicas + 1) for name in self.services]
            for name in further:
                self.start_service(name)
            if further:
                self.wait_until_ready(further)
            if self.settings.demo_partner_keys and {"identity", "registry"} <= set(self.services):
                # Before "up": with signatures required, an unkeyed partner could send nothing.
                provision_partner_keys(running, self._progress)
        except BaseException:
            self.stop()
            raise
        return self.endpoints

    def running_settings(self) -> HubSettings:
        """The settings of the hub this supervisor started: its endpoints and state directory."""
        assert self.endpoints is not None, "started"
        return self.endpoints.apply(self.settings).model_copy(update={"state_dir": self.state_dir})

    def _start_infrastructure(self) -> Endpoints:
        s = self.settings
        needs_embedded = s.kafka_bootstrap_servers is None or s.database_url is None or s.smtp_port is None
        if needs_embedded:
            self._progress(f"starting embedded infrastructure in {self.state_dir}")
            self.stack = EmbeddedStack(
                self.state_dir,
                kafka=s.kafka_bootstrap_servers is None,
                postgres=s.database_url is None,
                smtp=s.smtp_port is None,
            )
            self.stack.start()
        kafka = self.stack.kafka if self.stack else None
        postgres = self.stack.postgres if self.stack else None
        smtp = self.stack.smtp if self.stack else None
        return Endpoints(
            bootstrap_servers=s.kafka_bootstrap_servers or _require(kafka).bootstrap_servers,
            database_url=s.database_url.get_secret_value() if s.database_url else _require(postgres).dsn,
            smtp_host=s.smtp_host if s.smtp_port else "127.0.0.1",
            smtp_port=s.smtp_port or _require(smtp).port,
            embedded_broker=s.kafka_bootstrap_servers is None,
            supervisor_pid=os.getpid(),
        )

    def start_service(self, name: str) -> ServiceProcess:
        """Start ``name``: a service, or one of its further replicas (``replica_name``)."""
        assert self.endpoints is not None
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)
        port = free_port()
        env = {
            # Its services share this state directory, and the keys created there on first use.
            "HUB_LOCAL_SECRETS": "true",
            **os.environ,
            **self.endpoints.child_environment(),
            "HUB_STATE_DIR": str(self.state_dir),
            "HUB_TOPIC_PREFIX": self.settings.topic_prefix,
            "HUB_HEALTH_PORT": str(port),
            "HUB_KAFKA_ENABLE_IDEMPOTENCE": str(
                self.endpoints.apply(self.settings).kafka_enable_idempotence
            ).lower(),
            **self._extra_env,
        }
        log_file = logs / f"{name}.log"
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hub", "service", "run", service_of(name)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops services in order
                preexec_fn=die_with_parent,
            )
        self.processes[name] = ServiceProcess(name, process, port, log_file)
        self._progress(f"started {name} (pid {process.pid}, log {log_file})")
        return self.processes[name]

    def wait_until_ready(
        self, names: Sequence[str] | None = None, timeout_s: float = READY_TIMEOUT_S
    ) -> None:
        pending = set(names or self.processes)
        deadline = time.monotonic() + timeout_s
        while pending:
            for name in sorted(pending):
                service = self.processes[name]
                if service.process.poll() is not None:
                    raise ConfigurationError(
                        f"{name} exited with code {service.process.returncode}; see {service.log_file}: "
                        + _last_line(service.log_file)
                    )
                answer = service.readiness()
                if answer is not None and answer.get("ready"):
                    pending.discard(name)
                    self._progress(f"{name} ready")
            if pending and time.monotonic() > deadline:
                raise ConfigurationError(f"{', '.join(sorted(pending))} not ready after {timeout_s:.0f}s")
            time.sleep(0.2)

    def stop_service(self, name: str, *, timeout_s: float = 20.0) -> int | None:
        service = self.processes.pop(name, None)
        if service is None or service.process.poll() is not None:
            return None if service is None else service.process.returncode
        service.process.send_signal(signal.SIGTERM)
        try:
            return service.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            service.process.kill()
            return service.process.wait()

    def kill_service(self, name: str) -> None:
        """SIGKILL, for fault tests: no clean shutdown, no final commit."""
        service = self.processes.pop(name)
        service.process.kill()
        service.process.wait()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_service(name)
            self._progress(f"stopped {name}")
        if self.stack is not None:
            self.stack.stop()
            self._progress("stopped embedded infrastructure")
            self.stack = None
        if self._wrote_endpoints:
            (self.state_dir / "endpoints.json").unlink(missing_ok=True)
            self._wrote_endpoints = False


def replica_name(service: str, replica: int) -> str:
    """The process name of a service's ``replica``-th process: ``registry``, ``registry-2``, ..."""
    return service if replica == 1 else f"{service}-{replica}"


def service_of(process_name: str) -> str:
    """The service a process of ``replica_name`` runs."""
    service, _, replica = process_name.rpartition("-")
    return service if service and replica.isdigit() else process_name


def _require(value: T | None) -> T:
    if value is None:
        raise ConfigurationError("embedded infrastructure part missing")
    return value


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
