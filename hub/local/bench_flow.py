"""``hub bench --flow``: relocation cases through the whole hub, timed as the partners see them.

The hub runs as ``hub up`` runs it (``Supervisor``: the three services as their own
processes, with their default settings; embedded Tansu broker, PostgreSQL and SMTP sink).
This process plays the partners with the chaos suite's machinery (``hub.local.chaos``):
the portal reports moves, and the three agencies every relocation case involves (Kriens,
Lucerne, the tax office) read their deliveries and answer the move. No faults are injected.

What the clocks cover (``time.perf_counter()`` in this process unless said otherwise):

* **report**: just before the portal hands a case's signed record to its producer.
* **case completed**: when the last of the case's three agencies has read and verified its
  ``ch.lu.hub.case.completed.v1`` delivery: completion as the outside world sees it, after
  the registry committed it, the relay published it and Kafka delivered it. The registry's
  own ``completed`` row would be earlier and would leave the delivery out.
* **notice delivered**: the ``updated_at`` the notifications service wrote when it marked a
  notice delivered (the SMTP sink accepted the email, the inbox row exists); PostgreSQL's
  clock on this machine, mapped onto ``perf_counter`` through the wall clock. Polling for
  it only decides when to stop waiting; the timestamp, not the poll, ends the window.

Runs ("phases"), one after another on one hub, so its history grows from phase to phase:

1. a warm-up, not counted: the first cases pay for connections and caches;
2. **saturation**: N cases reported as fast as the broker acknowledges them; cases/s over
   first report .. last case completed and every notice of the phase delivered;
3. **half rate**: N cases reported at 0.5 x the saturation rate, evenly paced; per case,
   latency = report .. completed (no queue of N cases in front of it, unlike in 2.);
4. **growth**: one saturation phase per step (500, 2000, 8000 by default). Each phase finds
   the history of every phase before it in the database and on the topics, so a cost that
   grows with history (a scan, an unindexed lookup) shows as a falling cases/s.

Then a second hub, fresh, with PostgreSQL at ``fsync=on`` and ``synchronous_commit=on``
(the embedded default is ``fsync=off``): warm-up and a saturation phase of N cases, to
compare with the first hub's saturation phase (both start empty). Each hub's durability
settings are read back with ``SHOW`` and printed, so the figures say what was in force.

Limits of the view: the agencies answer in this process, on the same two cores as the
hub; their work (verifying signatures, signing answers) is in the figures, as a partner's
answer time is in a real case's. Waiting for the phase's last notices polls the
notifications table, whose scan grows with history; it runs only after the last case is
completed, and its timing does not end the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from hub.errors import HubError
from hub.local.bench_figures import format_table, percentile, rate
from hub.local.chaos.agencies import Agencies, stream
from hub.local.chaos.driver import Figures, read_figures
from hub.local.chaos.kafka_io import InsistentProducer
from hub.local.chaos.scenario import (
    AGENCIES,
    CITIZEN_TEMPLATES,
    DISTINCT_PERSONS,
    NOTICE_CHANNELS,
    Draft,
    build_stream,
)
from hub.local.embedded._pg_install import PgInstall
from hub.local.embedded.postgres import EmbeddedPostgres
from hub.local.provisioning import local_keyring
from hub.local.supervisor import Supervisor
from hub.runtime.db import connect
from hub.runtime.settings import HubSettings

Progress = Callable[[str], None]
Output = Callable[[str], None]

# A phase whose cases and notices stop moving for this long is broken, not slow.
STALL_TIMEOUT_S = 90.0
# How often the run looks at its own (in-process) completion records: cheap, so often.
COMPLETION_POLL_S = 0.05
# How often the database is asked how far the notices are, once every case is completed.
NOTICE_POLL_S = 0.5
# The agencies' consumer: Tansu answers a fetch on a caught-up partition only after a
# fraction of the fetch's max wait, which aiokafka's default (500 ms) would add to every
# completion the agencies read (see hub.local.bench, READER_FETCH_MAX_WAIT_MS).
AGENCY_FETCH_MAX_WAIT_MS = 10
DURABILITY_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_level")
NOTICES_PER_CASE = len(CITIZEN_TEMPLATES) * len(NOTICE_CHANNELS)
HALF_RATE = 0.5


class FlowBenchError(HubError):
    """The flow benchmark could not measure: a case or notice never came, a service died."""


@dataclass(frozen=True)
class FlowOptions:
    cases: int = 500
    growth: tuple[int, ...] = (500, 2000, 8000)
    warm_up: int = 20
    durable: bool = True  # also run the fsync=on hub
    replicas: int = 2  # also run a hub with this many processes per service; 1: not

    def cases_per_hub(self) -> int:
        """Cases the first hub receives in all: each case needs a person of its own."""
        return self.warm_up + 2 * self.cases + sum(self.growth)


@dataclass(frozen=True)
class PhaseResult:
    """One phase's figures; seconds from its first report."""

    name: str
    cases: int
    history: int  # cases the hub had already received, in earlier phases
    offered_per_s: float  # the pace reports were sent at; inf: as fast as acknowledged
    streamed_s: float  # first report .. last report acknowledged by the broker
    last_completion_s: float  # first report .. the last case completed, as its agencies saw it
    seconds: float  # first report .. last case completed and every notice delivered
    latencies_ms: tuple[float, ...]  # per case: report .. completed

    @property
    def cases_per_s(self) -> float:
        return rate(self.cases, self.seconds)

    @property
    def ms_per_case(self) -> float:
        return self.seconds * 1000 / self.cases


@dataclass(frozen=True)
class HubResult:
    label: str
    durability: dict[str, str]
    phases: list[PhaseResult] = field(default_factory=list)

    def phase(self, name: str) -> PhaseResult | None:
        return next((phase for phase in self.phases if phase.name == name), None)


@dataclass(frozen=True)
class FlowReport:
    default_hub: HubResult
    durable_hub: HubResult | None
    scaled_hub: HubResult | None = None

    @property
    def saturation(self) -> PhaseResult:
        found = self.default_hub.phase("saturation")
        assert found is not None, "every flow run has a saturation phase"
        return found

    @property
    def half_rate(self) -> PhaseResult:
        found = self.default_hub.phase("half rate")
        assert found is not None, "every flow run has a half-rate phase"
        return found


class _DurablePostgres(EmbeddedPostgres):
    """The embedded PostgreSQL with the durability a production server has.

    The embedded server gets ``fsync=off`` on its command line, which outranks
    ``ALTER SYSTEM``; a later ``-c`` of the same setting wins, so these are appended.
    """

    def _server_argv(self, install: PgInstall) -> list[str]:
        return [*super()._server_argv(install), "-c", "fsync=on", "-c", "synchronous_commit=on"]


@contextlib.contextmanager
def started_hub(
    state_dir: Path, *, durable: bool, progress: Progress, replicas: int = 1
) -> Iterator[Supervisor]:
    """A hub as ``hub up`` starts it, on a PostgreSQL this function starts (to choose its
    settings); the supervisor starts the broker and SMTP sink. Start and stop block: call
    outside the event loop, on the thread that then drives the phases."""
    postgres = (_DurablePostgres if durable else EmbeddedPostgres)(state_dir / "postgres")
    postgres.start()
    try:
        settings = HubSettings(
            state_dir=state_dir,
            kafka_bootstrap_servers=None,
            database_url=SecretStr(postgres.dsn),
            smtp_port=None,
        )
        supervisor = Supervisor(settings, progress=progress, replicas=replicas)
        supervisor.start()
        try:
            yield supervisor
        finally:
            supervisor.stop()
    finally:
        postgres.stop()


async def durability_settings(dsn: str) -> dict[str, str]:
    """What the server reports for each of ``DURABILITY_SETTINGS`` (SHOW, the server's default
    for new sessions: the services set none of these themselves)."""
    conn = await connect(dsn, application_name="hub-bench", connect_timeout_s=10)
    try:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in DURABILITY_SETTINGS}
    finally:
        await conn.close()


class FlowHub:
    """The partners of the bench on one started hub: the portal's producer and the agencies,
    kept for every phase, so that no phase re-reads what an earlier one left on the topics."""

    def __init__(self, supervisor: Supervisor, progress: Progress) -> None:
        assert supervisor.endpoints is not None, "started"
        self._supervisor = supervisor
        self._progress = progress
        self._bootstrap = supervisor.endpoints.bootstrap_servers
        self.dsn = supervisor.endpoints.database_url
        self._keyring = local_keyring(supervisor.running_settings())
        self._producer = InsistentProducer(self._bootstrap)
        self._agencies = Agencies(
            self._bootstrap,
            self._producer,
            set(),
            self._keyring,
            on_completion_seen=self._completion_seen,
            fetch_max_wait_ms=AGENCY_FETCH_MAX_WAIT_MS,
        )
        self._rng = random.Random()  # run ids only; nothing to repeat
        self._next_serial = 1
        self.history = 0
        self._completion_readers: dict[str, set[str]] = {}
        self._completed_at: dict[str, float] = {}

    async def __aenter__(self) -> FlowHub:
        await self._producer.start()
        await self._agencies.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._agencies.stop()
        await self._producer.stop()

    def _completion_seen(self, case_id: str, partner: str) -> None:
        readers = self._completion_readers.setdefault(case_id, set())
        readers.add(partner)
        if len(readers) == len(AGENCIES) and case_id not in self._completed_at:
            self._completed_at[case_id] = time.perf_counter()

    async def run_phase(self, name: str, cases: int, *, per_s: float = math.inf) -> PhaseResult:
        """Report ``cases`` new cases at ``per_s``, wait until each is completed and every
        notice delivered, and time it (see the module docstring for what the clocks cover)."""
        if self._next_serial + cases > DISTINCT_PERSONS:
            raise FlowBenchError(
                f"one hub takes at most {DISTINCT_PERSONS - 1} cases here (persons would repeat as "
                "look-alikes); fewer --cases or smaller --growth steps"
            )
        planned = build_stream(self._rng, cases, 0, first_serial=self._next_serial)
        self._next_serial += cases
        case_ids = [case.case_id for case in planned.cases]
        self._agencies.expect(case_ids)
        dead_letters_before = (await read_figures(self.dsn, [])).dead_letters
        reported_at: dict[str, float] = {}

        def reporting(draft: Draft) -> None:
            reported_at.setdefault(draft.envelope.businessprocessid, time.perf_counter())

        history = self.history
        self.history += cases
        pace = "as fast as acknowledged" if math.isinf(per_s) else f"at {per_s:.2f}/s"
        self._progress(f"{name}: {cases} cases reported {pace}, on a history of {history}")
        await stream(self._producer, planned.order, self._keyring, rate_per_s=per_s, on_sending=reporting)
        streamed = time.perf_counter()
        await self._wait_for_completions(name, case_ids)
        await self._wait_for_notices(name, case_ids, dead_letters_before)
        notices_done = await self._last_notice_delivered(case_ids)
        first = min(reported_at.values())
        completed = [self._completed_at[case_id] for case_id in case_ids]
        end = max(*completed, notices_done)
        self._progress(f"{name}: done in {end - first:.1f} s, {rate(cases, end - first):.2f} cases/s")
        return PhaseResult(
            name=name,
            cases=cases,
            history=history,
            offered_per_s=per_s,
            streamed_s=streamed - first,
            last_completion_s=max(completed) - first,
            seconds=end - first,
            latencies_ms=tuple(
                (self._completed_at[case_id] - reported_at[case_id]) * 1000 for case_id in case_ids
            ),
        )

    def _check_alive(self) -> None:
        self._agencies.check()
        for service in self._supervisor.processes.values():
            if service.process.poll() is not None:
                raise FlowBenchError(
                    f"{service.name} exited with code {service.process.returncode}; see {service.log_file}"
                )

    async def _wait_for_completions(self, phase: str, case_ids: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        seen, last_change = -1, loop.time()
        while True:
            self._check_alive()
            done = sum(case_id in self._completed_at for case_id in case_ids)
            if done == len(case_ids):
                return
            if done != seen:
                seen, last_change = done, loop.time()
            elif loop.time() - last_change > STALL_TIMEOUT_S:
                figures = await read_figures(self.dsn, list(case_ids))
                raise FlowBenchError(
                    f"{phase}: {done} of {len(case_ids)} cases completed as the agencies saw it, none for "
                    f"{STALL_TIMEOUT_S:.0f} s (database: {figures.completed} completed, "
                    f"{figures.dead_letters} dead letters, outbox backlog {figures.backlog})"
                )
            await asyncio.sleep(COMPLETION_POLL_S)

    async def _wait_for_notices(self, phase: str, case_ids: Sequence[str], dead_letters_before: int) -> None:
        loop = asyncio.get_running_loop()
        notices = len(case_ids) * NOTICES_PER_CASE
        last: Figures | None = None
        last_change = loop.time()
        while True:
            self._check_alive()
            figures = await read_figures(self.dsn, list(case_ids))
            if figures.dead_letters > dead_letters_before:
                raise FlowBenchError(
                    f"{phase}: {figures.dead_letters - dead_letters_before} records dead-lettered; "
                    "see `hub dlq list`"
                )
            if figures.done(len(case_ids), notices, dead_letters_before):
                return
            if figures != last:
                last, last_change = figures, loop.time()
            elif loop.time() - last_change > STALL_TIMEOUT_S:
                raise FlowBenchError(
                    f"{phase}: {figures.delivered} of {notices} notices delivered, outbox backlog "
                    f"{figures.backlog}; nothing moved for {STALL_TIMEOUT_S:.0f} s"
                )
            await asyncio.sleep(NOTICE_POLL_S)

    async def _last_notice_delivered(self, case_ids: Sequence[str]) -> float:
        """When the phase's last notice was marked delivered, on this process's perf_counter."""
        conn = await connect(self.dsn, application_name="hub-bench", connect_timeout_s=10)
        try:
            last = await conn.fetchval(
                "SELECT max(updated_at) FROM notifications.notifications"
                " WHERE case_id = ANY($1) AND status = 'delivered'",
                list(case_ids),
            )
        finally:
            await conn.close()
        # Both clocks read now, one after the other: the offset between wall clock and perf_counter.
        offset = time.time() - time.perf_counter()
        return float(last.timestamp()) - offset


async def _default_hub_phases(
    supervisor: Supervisor, options: FlowOptions, out: Output, progress: Progress
) -> HubResult:
    async with FlowHub(supervisor, progress) as hub:
        result = HubResult("as `hub up` runs it", await durability_settings(hub.dsn))
        out(f"PostgreSQL of the hub: {_settings_text(result.durability)}")
        await _warm_up(hub, options)
        saturation = await hub.run_phase("saturation", options.cases)
        result.phases.append(saturation)
        out(_saturation_text(saturation))
        half = HALF_RATE * saturation.cases_per_s
        latency = await hub.run_phase("half rate", options.cases, per_s=half)
        result.phases.append(latency)
        out(_latency_text(latency))
        for step in options.growth:
            result.phases.append(await hub.run_phase(f"growth {step}", step))
        out("")
        out("\n".join(growth_table([p for p in result.phases if p.name.startswith("growth")])))
        return result


async def _durable_hub_phases(
    supervisor: Supervisor, options: FlowOptions, out: Output, progress: Progress
) -> HubResult:
    async with FlowHub(supervisor, progress) as hub:
        result = HubResult("fsync=on, synchronous_commit=on", await durability_settings(hub.dsn))
        out(f"PostgreSQL of the durable hub (fresh): {_settings_text(result.durability)}")
        await _warm_up(hub, options)
        saturation = await hub.run_phase("saturation", options.cases)
        result.phases.append(saturation)
        out(f"durable hub, {_saturation_text(saturation)}")
        return result


async def _scaled_hub_phases(
    supervisor: Supervisor, options: FlowOptions, out: Output, progress: Progress
) -> HubResult:
    async with FlowHub(supervisor, progress) as hub:
        result = HubResult(f"{options.replicas} processes per service", await durability_settings(hub.dsn))
        await _warm_up(hub, options)
        saturation = await hub.run_phase("saturation", options.cases)
        result.phases.append(saturation)
        out(f"{options.replicas} processes per service (fresh hub), {_saturation_text(saturation)}")
        return result


async def _warm_up(hub: FlowHub, options: FlowOptions) -> None:
    if options.warm_up:
        await hub.run_phase("warm-up (not counted)", options.warm_up)


def run_flow(options: FlowOptions, state_dir: Path, out: Output, progress: Progress) -> FlowReport:
    """Both hubs, one after the other, under ``state_dir``; prints as each part finishes."""
    if options.cases < 1 or any(step < 1 for step in options.growth):
        raise FlowBenchError("--cases and every --growth step must be at least 1")
    if options.cases_per_hub() >= DISTINCT_PERSONS:
        raise FlowBenchError(
            f"{options.cases_per_hub()} cases on one hub (warm-up, 2 x --cases, --growth); at most "
            f"{DISTINCT_PERSONS - 1}, or persons repeat as look-alikes"
        )
    out(
        f"hub bench --flow: relocation cases through the three services as processes (embedded Tansu,"
        f" PostgreSQL, SMTP sink); portal and agencies in this process; warm-up {options.warm_up} cases"
        " per hub, not counted"
    )
    out(
        "window of a run: first report .. last case completed (all 3 agencies read its completion)"
        f" and all {NOTICES_PER_CASE} notices per case delivered (5 emails in the SMTP sink, 5 inbox)"
    )
    with started_hub(state_dir / "hub", durable=False, progress=progress) as supervisor:
        default_hub = asyncio.run(_default_hub_phases(supervisor, options, out, progress))
    durable_hub = None
    if options.durable:
        progress("starting a fresh hub with fsync=on, synchronous_commit=on")
        with started_hub(state_dir / "durable", durable=True, progress=progress) as supervisor:
            durable_hub = asyncio.run(_durable_hub_phases(supervisor, options, out, progress))
    scaled_hub = None
    if options.replicas > 1:
        progress(f"starting a fresh hub with {options.replicas} processes per service")
        with started_hub(
            state_dir / "scaled", durable=False, progress=progress, replicas=options.replicas
        ) as supervisor:
            scaled_hub = asyncio.run(_scaled_hub_phases(supervisor, options, out, progress))
    report = FlowReport(default_hub, durable_hub, scaled_hub)
    out("")
    out("\n".join(durability_table(report)))
    if scaled_hub is not None:
        out("")
        out("\n".join(scale_out_table(report)))
    return report


def _settings_text(settings: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in settings.items())


def _saturation_text(phase: PhaseResult) -> str:
    return (
        f"saturation: {phase.cases} cases reported as fast as the broker acknowledged them (all sent in"
        f" {phase.streamed_s:.1f} s); last case completed after {phase.last_completion_s:.1f} s, last notice"
        f" delivered by {phase.seconds:.1f} s: {phase.cases_per_s:.2f} cases/s"
    )


def _latency_text(phase: PhaseResult) -> str:
    values = phase.latencies_ms
    return (
        f"half rate: {phase.cases} cases reported evenly at {phase.offered_per_s:.2f}/s"
        f" (0.5 x saturation), done at {phase.cases_per_s:.2f} cases/s; latency report .. completed"
        f" (the last of 3 agencies read it): p50={percentile(values, 50):.0f} ms"
        f" p95={percentile(values, 95):.0f} ms p99={percentile(values, 99):.0f} ms max={max(values):.0f} ms"
    )


def growth_table(phases: Sequence[PhaseResult]) -> list[str]:
    """Per growth step: history found, cases, seconds, cases/s, and cases/s against the first step."""
    if not phases:
        return []
    first = phases[0].cases_per_s
    rows = [
        (
            f"{phase.cases}",
            f"{phase.history}",
            f"{phase.seconds:.1f}",
            f"{phase.cases_per_s:.2f}",
            f"{phase.ms_per_case:.1f}",
            f"{phase.cases_per_s / first:.2f}",
        )
        for phase in phases
    ]
    title = "cost growth: one phase after another on the same hub, each finding the cases of all before it"
    header = ("cases", "history", "seconds", "cases/s", "ms/case", "vs first")
    return [title, *format_table(header, rows)]


def durability_table(report: FlowReport) -> list[str]:
    """Each hub's durability settings as SHOW read them, and its saturation rate."""
    hubs = [report.default_hub, *([report.durable_hub] if report.durable_hub else [])]
    rows = []
    for hub in hubs:
        saturation = hub.phase("saturation")
        rows.append(
            (
                hub.label,
                *(hub.durability[name] for name in DURABILITY_SETTINGS),
                f"{saturation.cases}" if saturation else "-",
                f"{saturation.cases_per_s:.2f}" if saturation else "-",
            )
        )
    header = ("PostgreSQL (fresh hub each)", *DURABILITY_SETTINGS, "cases", "cases/s")
    return ["durability: saturation phase on each hub, both fresh", *format_table(header, rows)]


def scale_out_table(report: FlowReport) -> list[str]:
    """The saturation rate of one process per service beside that of the scaled hub; both
    hubs fresh, on the same machine, so the ratio is what the extra processes bought."""
    assert report.scaled_hub is not None
    one = report.saturation
    scaled = report.scaled_hub.phase("saturation")
    assert scaled is not None, "the scaled hub runs a saturation phase"
    header = ("processes per service", "cases", "cases/s", "vs one")
    rows = [
        ("1", f"{one.cases}", f"{one.cases_per_s:.2f}", "1.00"),
        (
            report.scaled_hub.label.split()[0],
            f"{scaled.cases}",
            f"{scaled.cases_per_s:.2f}",
            f"{scaled.cases_per_s / one.cases_per_s:.2f}" if one.cases_per_s else "-",
        ),
    ]
    return [
        "scale-out: saturation phase, fresh hubs, the same 2 cores for every process",
        *format_table(header, rows),
    ]
