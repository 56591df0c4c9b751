"""``python -m hub.local.chaos``: one chaos run; exit status 0 only if nothing was lost or duplicated
and exactly the poison records were dead-lettered."""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import time
from pathlib import Path

from hub.local.chaos.driver import ChaosConfig, run_chaos


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hub.local.chaos", description=__doc__)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (default: a new one, printed)")
    parser.add_argument("--kills-per-service", type=int, default=3)
    parser.add_argument("--pauses", type=int, default=3, help="broker SIGSTOP/SIGCONT")
    parser.add_argument("--db-restarts", type=int, default=2)
    parser.add_argument("--poison", type=int, default=20, help="poison records among the cases")
    parser.add_argument("--rate", type=float, default=10.0, help="cases reported per second")
    parser.add_argument("--settle-timeout", type=float, default=900.0, help="seconds")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="default: a new folder under .hub/chaos, removed if the run passes",
    )
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs, database) anyway")
    args = parser.parse_args(argv)
    if (
        min(args.cases, args.kills_per_service, args.pauses, args.db_restarts, args.poison) < 0
        or args.rate <= 0
    ):
        parser.error("counts must not be negative and the rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    state_dir = args.state_dir or Path(".hub/chaos") / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}"
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ChaosConfig(
        state_dir=state_dir.resolve(),
        cases=args.cases,
        seed=seed,
        kills_per_service=args.kills_per_service,
        pauses=args.pauses,
        db_restarts=args.db_restarts,
        poisons=args.poison,
        rate_per_s=args.rate,
        settle_timeout_s=args.settle_timeout,
    )
    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {line}", flush=True)

    print(f"chaos seed {seed} (repeat with --seed {seed}); state in {config.state_dir}", flush=True)
    report = run_chaos(config, progress)
    remove = report.ok and not args.keep and args.state_dir is None
    print(f"run took {time.monotonic() - started:.1f}s; state {'removed' if remove else 'kept'}")
    if remove:
        shutil.rmtree(config.state_dir, ignore_errors=True)
    print("\n".join(report.lines()), flush=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
