"""The chaos suite: relocation cases through the whole hub while services are
SIGKILLed, the broker is frozen and PostgreSQL restarts; then count what was lost,
duplicated and dead-lettered.

``python -m hub.local.chaos --cases 2000 --seed S`` (``make chaos``) runs it from the shell;
``run_chaos(ChaosConfig(...))`` from Python (``tests/chaos``).
"""

from __future__ import annotations

from hub.local.chaos.driver import ChaosConfig, ChaosReport, run_chaos

__all__ = ["ChaosConfig", "ChaosReport", "run_chaos"]
