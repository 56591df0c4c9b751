"""The faults of a chaos run: a seeded plan, and the injector that carries it out.

Each fault happens at a random moment, one in each of equal slots of the run's window, so
that faults are spread over the whole stream yet the same seed replays the same moments.
A watchdog restarts any service that exits on its own, as an orchestrator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.local.embedded.kafka import EmbeddedKafka
from hub.local.embedded.postgres import EmbeddedPostgres
from hub.local.supervisor import Supervisor

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
CRASH_RESTART_DELAY_S = 1.0
WATCH_INTERVAL_S = 0.5


class FaultKind(enum.Enum):
    KILL = "kill"
    PAUSE = "pause"
    DB_RESTART = "db-restart"


@dataclass(frozen=True)
class Fault:
    at_s: float  # after the start of the stream
    kind: FaultKind
    target: str  # a service name, "kafka" or "postgres"
    duration_s: float  # kill: until the restart; pause: how long frozen; db-restart: downtime

    def describe(self) -> str:
        return f"{self.kind.value} {self.target} at {self.at_s:.1f}s for {self.duration_s:.1f}s"


def plan_faults(
    rng: random.Random,
    *,
    window_s: float,
    services: Sequence[str],
    kills_per_service: int,
    pauses: int,
    db_restarts: int,
) -> list[Fault]:
    faults: list[Fault] = []
    for service in services:
        faults += [
            Fault(at, FaultKind.KILL, service, rng.uniform(0.0, 2.0))
            for at in _moments(rng, window_s, kills_per_service)
        ]
    faults += [
        Fault(at, FaultKind.PAUSE, "kafka", rng.uniform(2.0, 6.0)) for at in _moments(rng, window_s, pauses)
    ]
    faults += [
        Fault(at, FaultKind.DB_RESTART, "postgres", rng.uniform(0.5, 3.0))
        for at in _moments(rng, window_s, db_restarts)
    ]
    return sorted(faults, key=lambda fault: fault.at_s)


def _moments(rng: random.Random, window_s: float, count: int) -> list[float]:
    """One random moment in each of ``count`` equal slots: spread out, so that a service
    killed twice has had time to start and take work in between."""
    width = window_s / max(count, 1)
    return [width * (slot + rng.uniform(0.1, 0.9)) for slot in range(count)]


class FaultInjector:
    """Carries out a fault plan on a supervisor's services and embedded infrastructure."""

    def __init__(self, supervisor: Supervisor, *, progress: Progress) -> None:
        stack = supervisor.stack
        if stack is None or stack.kafka is None or stack.postgres is None:
            raise ValueError("chaos needs the embedded broker and PostgreSQL: it pauses and restarts them")
        self._supervisor = supervisor
        self._kafka: EmbeddedKafka = stack.kafka
        self._postgres: EmbeddedPostgres = stack.postgres
        self._progress = progress
        self._down: set[str] = set()  # services killed or crashed, not yet restarted
        self._paused = False
        self.kills: Counter[str] = Counter()
        self.crashes: Counter[str] = Counter()
        self.pauses = 0
        self.db_restarts = 0

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())

    async def run(self, plan: Sequence[Fault]) -> None:
        """Each fault at its moment, concurrently: a long pause does not delay a kill."""
        started = asyncio.get_running_loop().time()

        async def at_its_moment(fault: Fault) -> None:
            await asyncio.sleep(max(0.0, started + fault.at_s - asyncio.get_running_loop().time()))
            await self._inject(fault)

        await asyncio.gather(*(at_its_moment(fault) for fault in plan))

    async def _inject(self, fault: Fault) -> None:
        if fault.kind is FaultKind.KILL:
            await self._kill(fault.target, fault.duration_s)
        elif fault.kind is FaultKind.PAUSE:
            await self._pause(fault.duration_s)
        else:
            await self._restart_postgres(fault.duration_s)

    async def _kill(self, name: str, down_s: float) -> None:
        while name in self._down:  # the watchdog is restarting it after a crash
            await asyncio.sleep(0.1)
        self._down.add(name)
        try:
            pid = self._supervisor.processes[name].process.pid
            self._supervisor.kill_service(name)
            self.kills[name] += 1
            self._progress(f"SIGKILL {name} (pid {pid}); restart in {down_s:.1f}s")
            await asyncio.sleep(down_s)
            self._supervisor.start_service(name)
        finally:
            self._down.discard(name)

    async def _pause(self, seconds: float) -> None:
        if self._paused:
            return  # already frozen by an overlapping pause
        self._paused = True
        self._kafka.pause()
        self.pauses += 1
        self._progress(f"SIGSTOP broker for {seconds:.1f}s")
        try:
            await asyncio.sleep(seconds)
        finally:
            self._kafka.resume()
            self._paused = False
            self._progress("SIGCONT broker")

    async def _restart_postgres(self, down_s: float) -> None:
        self._progress(f"restarting PostgreSQL (down {down_s:.1f}s)")
        await asyncio.to_thread(self._stop_wait_start, down_s)
        self.db_restarts += 1
        self._progress("PostgreSQL is back")

    def _stop_wait_start(self, down_s: float) -> None:
        # Same data directory and port: the services' connection strings stay valid.
        self._postgres.stop()
        time.sleep(down_s)
        self._postgres.start()

    async def watch(self) -> None:
        """Restart services that exited without being killed (until cancelled)."""
        while True:
            for name, service in list(self._supervisor.processes.items()):
                if name in self._down or service.process.poll() is None:
                    continue
                self._down.add(name)
                self.crashes[name] += 1
                self._progress(f"{name} exited by itself (code {service.process.returncode}); restarting")
                self._supervisor.processes.pop(name, None)
                asyncio.get_running_loop().call_later(CRASH_RESTART_DELAY_S, self._restart_crashed, name)
            await asyncio.sleep(WATCH_INTERVAL_S)

    def _restart_crashed(self, name: str) -> None:
        try:
            self._supervisor.start_service(name)
        finally:
            self._down.discard(name)

    async def all_running(self) -> None:
        """Wait until no service is down and the broker is not frozen."""
        while self._down or self._paused:
            await asyncio.sleep(0.2)

    def release(self) -> None:
        """Leave the broker running, whatever happened (e.g. the run was interrupted mid-pause)."""
        with contextlib.suppress(Exception):
            self._kafka.resume()
