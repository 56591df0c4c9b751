"""One chaos run: start the hub, stream cases while faults strike, let it settle, count.

The hub runs as in production on one machine (``Supervisor``: embedded broker, PostgreSQL
and SMTP sink, the three services as their own processes); this process plays the
partners and the fault injector.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from hub.local.chaos.agencies import Agencies, stream
from hub.local.chaos.faults import Fault, FaultInjector, plan_faults
from hub.local.chaos.kafka_io import InsistentProducer
from hub.local.chaos.scenario import CITIZEN_TEMPLATES, NOTICE_CHANNELS, Stream, build_stream
from hub.local.chaos.verify import Observed, Tally, describe, observe, tally
from hub.local.provisioning import local_keyring
from hub.local.supervisor import Supervisor
from hub.runtime.db import DATABASE_FAILURES, connect
from hub.runtime.settings import HubSettings
from services import SERVICE_NAMES

Progress = Callable[[str], None]
SETTLE_POLL_S = 2.0


@dataclass(frozen=True)
class ChaosConfig:
    """What to stream and which faults to inject; the seed makes the plan repeatable."""

    state_dir: Path
    cases: int = 2000
    seed: int = 0
    kills_per_service: int = 3
    pauses: int = 3
    db_restarts: int = 2
    poisons: int = 20
    rate_per_s: float = 10.0  # cases reported per second (the hub's pace on two cores, roughly)
    settle_timeout_s: float = 900.0
    stall_timeout_s: float = 90.0  # give up settling when nothing moved for this long
    # For the services: short backoffs keep a run short; they change pacing, not guarantees.
    service_env: dict[str, str] = field(
        default_factory=lambda: {
            "HUB_OUTBOX_POLL_INTERVAL_S": "0.2",
            "HUB_RETRY_BACKOFF_INITIAL_S": "0.1",
            "HUB_RETRY_BACKOFF_MAX_S": "2",
            "HUB_NOTIFICATION_BACKOFF_INITIAL_S": "0.5",
            "HUB_NOTIFICATION_BACKOFF_MAX_S": "5",
        }
    )


@dataclass(frozen=True)
class ChaosReport:
    """What was done to the hub and what was found afterwards."""

    cases: int
    poisons: int
    kills: dict[str, int]
    crashes: dict[str, int]
    pauses: int
    db_restarts: int
    settled: bool
    stream_s: float
    settle_s: float
    resends: int
    agency_view: dict[str, int]
    observed: Observed
    tally: Tally

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())

    @property
    def ok(self) -> bool:
        t = self.tally
        return t.lost == 0 and t.duplicated == 0 and t.dead_lettered == self.poisons and not t.findings

    def lines(self) -> list[str]:
        """The report; its last line is the one the issue asks for."""
        t = self.tally
        return [
            f"kills per service: {dict(self.kills)}; exits without a kill: {dict(self.crashes) or 'none'}",
            f"streamed in {self.stream_s:.1f}s; "
            + (
                f"all cases and notices done, outboxes empty {self.settle_s:.1f}s after the first case"
                if self.settled
                else f"NOT settled: gave up {self.settle_s:.1f}s after the first case"
            ),
            f"producer resends: {self.resends}; agencies saw: {self.agency_view}",
            *describe(self.observed),
            *t.findings,
            *t.summary(),
            f"emails transmitted again with the same Message-ID (kill between SMTP 250 and recording it;"
            f" one message in the mailbox): {t.resent}",
            f"cases={self.cases} kills={self.total_kills} pauses={self.pauses} db_restarts={self.db_restarts}"
            f" lost={t.lost} duplicated={t.duplicated} dead_lettered={t.dead_lettered}",
        ]


def _hub_settings(state_dir: Path) -> HubSettings:
    # Every part embedded, whatever HUB_* variables say: chaos pauses and restarts them.
    return HubSettings(state_dir=state_dir, kafka_bootstrap_servers=None, database_url=None, smtp_port=None)


def run_chaos(config: ChaosConfig, progress: Progress = lambda _line: None) -> ChaosReport:
    """Start a hub of its own under ``config.state_dir``, run the chaos on it, stop it.

    The supervisor starts and stops outside the event loop: its start-up blocks (and runs
    its own loop to register the partners' keys), and the services it spawns must stay
    children of this main thread, which restarts them after each kill.
    """
    rng = random.Random(config.seed)
    cases = build_stream(rng, config.cases, config.poisons)
    window_s = len(cases.order) / config.rate_per_s
    plan = plan_faults(
        rng,
        window_s=window_s,
        services=SERVICE_NAMES,
        kills_per_service=config.kills_per_service,
        pauses=config.pauses,
        db_restarts=config.db_restarts,
    )
    progress(
        f"seed {config.seed}: {config.cases} cases and {config.poisons} poison records in {window_s:.0f}s"
    )
    for fault in plan:
        progress(f"planned: {fault.describe()}")
    supervisor = Supervisor(_hub_settings(config.state_dir), progress=progress, extra_env=config.service_env)
    supervisor.start()
    try:
        return asyncio.run(drive(config, supervisor, cases, plan, progress))
    finally:
        supervisor.stop()


async def drive(
    config: ChaosConfig, supervisor: Supervisor, cases: Stream, plan: list[Fault], progress: Progress
) -> ChaosReport:
    """Play the partners and the faults against a started hub, wait, count.

    Run it on the thread that started ``supervisor``: restarted services are its children.
    """
    assert supervisor.endpoints is not None, "started"
    assert supervisor.stack is not None, "embedded"
    assert supervisor.stack.smtp is not None, "embedded"
    bootstrap, dsn = supervisor.endpoints.bootstrap_servers, supervisor.endpoints.database_url
    producer = InsistentProducer(bootstrap)
    # The partners' keys, as the supervisor provisioned them for this hub.
    keyring = local_keyring(supervisor.running_settings())
    agencies = Agencies(bootstrap, producer, {case.case_id for case in cases.cases}, keyring)
    injector = FaultInjector(supervisor, progress=progress)
    await producer.start()
    await agencies.start()
    watchdog = asyncio.create_task(injector.watch(), name="chaos-watchdog")
    try:
        started = time.monotonic()
        await asyncio.gather(
            stream(producer, cases.order, keyring, rate_per_s=config.rate_per_s),
            injector.run(plan),
        )
        stream_s = time.monotonic() - started
        progress(f"all {len(cases.order)} records sent and all faults injected after {stream_s:.1f}s")
        await injector.all_running()
        settled = await _settle(config, dsn, cases, agencies, progress)
        settle_s = time.monotonic() - started
        observed = await observe(dsn, bootstrap, supervisor.stack.smtp, cases)
    finally:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        injector.release()
        await agencies.stop()
        await producer.stop()
    return ChaosReport(
        cases=config.cases,
        poisons=config.poisons,
        kills=dict(injector.kills),
        crashes=dict(injector.crashes),
        pauses=injector.pauses,
        db_restarts=injector.db_restarts,
        settled=settled,
        stream_s=stream_s,
        settle_s=settle_s,
        resends=producer.resends,
        agency_view=dict(agencies.seen),
        observed=observed,
        tally=tally(cases, observed),
    )


class Figures(NamedTuple):
    """How far the hub is, read from its database."""

    completed: int
    delivered: int  # notices (email and inbox) in status delivered
    backlog: int  # outbox rows not yet published, all services
    dead_letters: int

    def done(self, cases: int, notices: int, poisons: int) -> bool:
        return (
            self.completed == cases
            and self.delivered == notices
            and self.backlog == 0
            and self.dead_letters >= poisons
        )


async def _settle(
    config: ChaosConfig, dsn: str, cases: Stream, agencies: Agencies, progress: Progress
) -> bool:
    """Wait until every case and notice is done and nothing waits in an outbox; False when the
    time is up or nothing moved for ``stall_timeout_s``."""
    case_ids = [case.case_id for case in cases.cases]
    notices = len(case_ids) * len(CITIZEN_TEMPLATES) * len(NOTICE_CHANNELS)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.settle_timeout_s
    last: Figures | None = None
    last_change = loop.time()
    while True:
        agencies.check()
        try:
            figures: Figures | None = await read_figures(dsn, case_ids)
        except DATABASE_FAILURES as error:
            progress(f"cannot read progress: {error}")
            figures = last
        if figures is not None and figures != last:
            last, last_change = figures, loop.time()
            progress(
                f"completed {figures.completed}/{len(case_ids)}, notices delivered"
                f" {figures.delivered}/{notices}, outbox backlog {figures.backlog},"
                f" dead letters {figures.dead_letters}/{config.poisons}"
            )
            if figures.done(len(case_ids), notices, config.poisons):
                return True
        if loop.time() > deadline or loop.time() - last_change > config.stall_timeout_s:
            progress("giving up waiting: " + ("time is up" if loop.time() > deadline else "no progress"))
            return False
        await asyncio.sleep(SETTLE_POLL_S)


async def read_figures(dsn: str, case_ids: list[str]) -> Figures:
    """How far ``case_ids`` are, and what waits in the outboxes or was dead-lettered, hub-wide."""
    conn = await connect(dsn, application_name="hub-chaos", connect_timeout_s=5)
    try:
        completed = await conn.fetchval(
            "SELECT count(*) FROM registry.cases WHERE case_id = ANY($1) AND status = 'completed'", case_ids
        )
        delivered = await conn.fetchval(
            "SELECT count(*) FROM notifications.notifications"
            " WHERE case_id = ANY($1) AND status = 'delivered'",
            case_ids,
        )
        backlog = dead = 0
        for schema in SERVICE_NAMES:
            backlog += await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
            )
            dead += await conn.fetchval(f'SELECT count(*) FROM "{schema}".dead_letters')
        return Figures(int(completed), int(delivered), int(backlog), int(dead))
    finally:
        await conn.close()
