"""``hub``: one entry point for running, demonstrating and inspecting the hub.

Errors are one line on stderr and a non-zero exit code, never a traceback; progress
goes to stderr so that ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hub.cli import exit_codes
from hub.cli.exit_codes import ExitCode
from hub.errors import HubError
from hub.runtime.db import connect
from hub.runtime.settings import HubSettings

if TYPE_CHECKING:
    from hub.cli.casefile import CaseView


def _progress(line: str) -> None:
    print(f"· {line}", file=sys.stderr, flush=True)


def _quiet(_line: str) -> None:
    pass


def cmd_up(args: argparse.Namespace) -> int:
    from hub.local.supervisor import Supervisor

    settings = HubSettings()
    supervisor = Supervisor(settings, progress=_progress, replicas=args.replicas)
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    endpoints = supervisor.start()
    print(
        f"hub is up: Kafka {endpoints.bootstrap_servers}, PostgreSQL {_redact(endpoints.database_url)}, "
        f"SMTP {endpoints.smtp_host}:{endpoints.smtp_port}. Ctrl-C stops everything.",
        flush=True,
    )
    try:
        while not stop_requested:
            for name, service in list(supervisor.processes.items()):
                if service.process.poll() is not None:
                    _progress(f"{name} exited with code {service.process.returncode}; restarting")
                    supervisor.processes.pop(name)
                    supervisor.start_service(name)
            time.sleep(0.5)
    finally:
        _progress("stopping")
        supervisor.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.local.supervisor import Supervisor
    from hub.runtime.endpoints import read_endpoints

    settings = HubSettings()
    progress = _progress if not args.quiet else _quiet
    up = read_endpoints(settings.state_dir) if settings.kafka_bootstrap_servers is None else None
    if up is not None:
        # A hub is up in this state directory: the case runs there and stays there, for
        # `hub case show`, `hub audit verify` and `hub audit subject` to read afterwards.
        if args.variant == "escalation":
            raise HubError(
                "the escalation variant needs a hub started with a deadline of seconds; "
                "run it without `hub up` running, or start `hub up` with HUB_CASE_DEADLINE_S=4"
            )
        progress(f"running the case on the hub that is up (hub up, pid {up.supervisor_pid}); it stays there")
        view = _play_demo(args, up.apply(settings), progress)
    else:
        extra_env = {}
        if args.variant == "escalation":
            # A deadline of seconds instead of weeks, so the escalation is seen in the demo.
            extra_env = {"HUB_CASE_DEADLINE_S": "4", "HUB_ESCALATION_CHECK_INTERVAL_S": "1"}
        supervisor = Supervisor(settings, progress=progress, extra_env=extra_env)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        endpoints = supervisor.start()
        try:
            view = _play_demo(args, endpoints.apply(settings), progress)
        finally:
            supervisor.stop()
    if args.json:
        print(json.dumps(view.as_json(), indent=2))
    else:
        print(view.as_text())
    return 0


def _play_demo(args: argparse.Namespace, running: HubSettings, progress: Callable[[str], None]) -> CaseView:
    from contracts import Language
    from hub.local.demo import run_building_permit_demo, run_demo
    from hub.runtime.telemetry import setup_tracing

    provider = setup_tracing("partners", running)
    try:
        if args.case == "building-permit":
            return asyncio.run(run_building_permit_demo(running, progress=progress, timeout_s=args.timeout))
        return asyncio.run(
            run_demo(
                running,
                progress=progress,
                timeout_s=args.timeout,
                language=Language(args.language),
                variant=args.variant,
            )
        )
    finally:
        provider.shutdown()


def cmd_case_show(args: argparse.Namespace) -> int:

    from hub.cli.casefile import load_case_view, reader_master_key
    from hub.cli.database import running_hub

    settings = running_hub()

    async def show() -> int:
        conn = await connect(settings.database_dsn(), application_name="hub-cli")
        try:
            # Timeline texts about the person are sealed: the hub's master key opens them.
            view = await load_case_view(conn, args.case_id, master=reader_master_key(settings))
        finally:
            await conn.close()
        if view is None:
            print(f"hub: error: no case {args.case_id}", file=sys.stderr)
            return ExitCode.FAILED
        print(json.dumps(view.as_json(), indent=2) if args.json else view.as_text())
        return 0

    return asyncio.run(show())


def cmd_case_unfilled(args: argparse.Namespace) -> int:
    """Open cases waiting for a party that no active partner fills, for operations."""
    from hub.cli.casefile import load_unfilled_slots
    from hub.cli.database import database_settings, run_on_database
    from hub.cli.output import print_rows

    slots = run_on_database(
        database_settings(),
        lambda conn: load_unfilled_slots(conn, limit=args.limit),
        no_tables="no registry tables in this database; start the hub once (`hub up`)",
    )
    print_rows(
        slots,
        as_json=args.json,
        line=lambda slot: slot.as_text(),
        jsonable=lambda slot: slot.as_json(),
        empty="no open case lacks a party",
    )
    return 0


def cmd_service_run(args: argparse.Namespace) -> int:
    from hub.runtime.runner import main

    main(args.name)
    return 0


def cmd_schemas(args: argparse.Namespace) -> int:
    from contracts.schemas import write_schemas

    for path in write_schemas(Path(args.directory)):
        print(path)
    return 0


# Figures of a full run, and of --quick: a smoke run of every part in about a minute, whose
# figures are too small to compare. An option given on the command line wins over both.
FULL_BENCH = {"events": 5000, "cases": 500, "warm_up": 20}
QUICK_BENCH = {"events": 200, "cases": 20, "warm_up": 5}
FULL_GROWTH, QUICK_GROWTH = (500, 2000, 8000), (10, 20)


def _growth_steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of case counts: {text!r}") from None
    if min(steps) < 1:
        raise argparse.ArgumentTypeError(f"every step must be at least 1 case: {text!r}")
    return steps


def cmd_bench(args: argparse.Namespace) -> int:
    from hub.local.bench import main
    from hub.local.bench_flow import FlowOptions

    # Neither --hop nor --flow: both.
    hop, flow = (args.hop, args.flow) if args.hop or args.flow else (True, True)
    preset = QUICK_BENCH if args.quick else FULL_BENCH

    def count(name: str) -> int:
        given: int | None = getattr(args, name)
        return given if given is not None else preset[name]

    options = FlowOptions(
        cases=count("cases"),
        growth=args.growth or (QUICK_GROWTH if args.quick else FULL_GROWTH),
        warm_up=count("warm_up"),
        durable=not args.no_durable,
        replicas=args.replicas,
    )
    return int(
        main(
            events=count("events"), payload_bytes=args.payload_bytes, hop=hop, flow=options if flow else None
        )
    )


def _redact(url: str) -> str:
    """Show where the database is, never its password."""
    if "@" in url and ":" in url.split("@", 1)[0].split("//", 1)[-1]:
        scheme, rest = url.split("//", 1)
        user = rest.split(":", 1)[0]
        return f"{scheme}//{user}:***@{rest.split('@', 1)[1]}"
    return url


def _version() -> str:
    """The installed distribution's version; a source tree that is not installed says so."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "(not installed)"


DISTRIBUTION = "lucerne-service-hub"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="hub",
        description="Lucerne cross-agency service hub",
        epilog=exit_codes.epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--version", action="version", version=f"hub {_version()}")
    commands = root.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run infrastructure and all services in the foreground")
    up.add_argument(
        "--replicas",
        type=_positive_int,
        default=1,
        help="processes per service, sharing its consumer groups and schema as pods of one Deployment (1)",
    )
    up.set_defaults(func=cmd_up)

    demo = commands.add_parser("demo", help="run one relocation case end to end and print its timeline")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for completion")
    demo.add_argument(
        "--language",
        default="de",
        choices=["de", "fr", "it", "en"],
        help="the citizen's language: the notices are written in it (de)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress lines")
    demo.add_argument(
        "--variant",
        default="main",
        choices=["main", "rejection", "escalation", "action-required", "intercantonal"],
        help="relocation: Lucerne rejects, never answers (deadline escalates), or first asks the citizen; "
        "intercantonal: a move from Lucerne to Zug (two cantons, both tax offices)",
    )
    demo.add_argument(
        "--case",
        default="relocation",
        choices=["relocation", "building-permit"],
        help="which case type to run (relocation)",
    )
    demo.set_defaults(func=cmd_demo)

    case = commands.add_parser("case", help="inspect cases; open a test case").add_subparsers(
        dest="case_command", required=True
    )
    show = case.add_parser("show", help="print a case, its parties and its timeline")
    show.add_argument("case_id", help="the case id (business process id), e.g. eumzug-…")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=cmd_case_show)
    unfilled = case.add_parser("unfilled", help="open cases with a party slot no active partner fills")
    unfilled.add_argument("--limit", type=int, default=1000, help="at most this many cases (1000)")
    unfilled.add_argument("--json", action="store_true", help="print JSON instead of text")
    unfilled.set_defaults(func=cmd_case_unfilled)
    from hub.cli import test_case as test_case_cli

    test_case_cli.register(case)

    service = commands.add_parser("service", help="run one service").add_subparsers(
        dest="service_command", required=True
    )
    run = service.add_parser("run", help="run one service in this process")
    run.add_argument(
        "name", choices=["identity", "registry", "notifications"], help="the service to run in this process"
    )
    run.set_defaults(func=cmd_service_run)

    schemas = commands.add_parser("schemas", help="write the JSON Schema of every contract")
    schemas.add_argument("directory", help="where to write one JSON Schema file per event type")
    schemas.set_defaults(func=cmd_schemas)

    bench = commands.add_parser(
        "bench",
        help="one hub hop vs a raw Kafka pipe, and whole relocation cases: rate, latency, durability, growth",
    )
    bench.add_argument("--hop", action="store_true", help="run the hop part (default: both parts)")
    bench.add_argument(
        "--flow", action="store_true", help="run the flow part: whole cases on a started hub (default: both)"
    )
    bench.add_argument(
        "--quick", action="store_true", help="a smoke run: few events and cases; figures not comparable"
    )
    bench.add_argument("--events", type=int, help="hop: events sent through each pipe (5000)")
    bench.add_argument("--payload-bytes", type=int, default=400, help="hop: size of each event's value (400)")
    bench.add_argument("--cases", type=int, help="flow: cases in the saturation and the half-rate run (500)")
    bench.add_argument(
        "--growth",
        type=_growth_steps,
        help="flow: cases per growth step, run one after another on one hub (500,2000,8000)",
    )
    bench.add_argument("--warm-up", type=int, help="flow: cases sent to each hub first, not counted (20)")
    bench.add_argument(
        "--no-durable",
        action="store_true",
        help="flow: skip the second hub, with fsync=on (one hub start less)",
    )
    bench.add_argument(
        "--replicas",
        type=_positive_int,
        default=2,
        help="flow: also a fresh hub with this many processes per service, for scale-out (2; 1 skips it)",
    )
    bench.set_defaults(func=cmd_bench)
    from hub.cli import keys as signing_cli

    signing_cli.register(commands)
    _register_operations_commands(commands)
    from hub.cli import database as database_cli

    database_cli.register(commands)
    _register_audit_commands(commands)
    _register_service_commands(commands)
    return root


def _register_audit_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``hub audit verify|subject|refusals``: the audit chain of routing decisions, disclosures, refusals."""
    from hub.cli import audit as audit_cli

    audit_cli.register(commands)


def _register_operations_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``hub dlq ...`` and ``hub outbox ...``: the runtime's tables in every service schema;
    ``hub vault ...``: the vault's master key ring."""
    from hub.cli import dlq as dlq_cli
    from hub.cli import outbox as outbox_cli
    from hub.cli import vault as vault_cli

    dlq_cli.register(commands)
    outbox_cli.register(commands)
    vault_cli.register(commands)


def _register_service_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Each service may contribute commands in ``services/<name>/cli.py`` (``register(commands)``)."""
    import importlib
    import importlib.util

    from services import SERVICE_NAMES

    for name in SERVICE_NAMES:
        module_name = f"services.{name}.cli"
        if importlib.util.find_spec(module_name) is not None:
            importlib.import_module(module_name).register(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a wrong command line exits with ExitCode.USAGE (argparse's 2)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("hub: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except (HubError, OSError, RuntimeError, ValueError) as error:
        print(f"hub: error: {error}", file=sys.stderr)
        return ExitCode.FAILED


if __name__ == "__main__":
    raise SystemExit(main())
