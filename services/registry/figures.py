"""Case figures for operations, counted only for work that committed.

``AfterCommit`` wraps whatever counts them (the composition root's /metrics registry, a
test's list): a handler tells its unit of work, and the count happens when the record's
transaction has committed, so a retried record is counted once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from hub.runtime.messages import Emitter
from services.registry.ports import CaseFigures


class NoFigures:
    """Counts nothing: where no one reads the figures."""

    def case_completed(self, case_type: str, seconds: float) -> None:
        return None

    def case_escalated(self, case_type: str) -> None:
        return None


@dataclass
class RecordedFigures:
    """Keeps the figures in lists, for tests."""

    completed: list[tuple[str, float]] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)

    def case_completed(self, case_type: str, seconds: float) -> None:
        self.completed.append((case_type, seconds))

    def case_escalated(self, case_type: str) -> None:
        self.escalated.append(case_type)


@dataclass(frozen=True)
class AfterCommit:
    """Passes each figure to ``sink`` once ``emitter``'s unit of work has committed."""

    emitter: Emitter
    sink: CaseFigures

    def case_completed(self, case_type: str, seconds: float) -> None:
        self.emitter.after_commit(functools.partial(self.sink.case_completed, case_type, seconds))

    def case_escalated(self, case_type: str) -> None:
        self.emitter.after_commit(functools.partial(self.sink.case_escalated, case_type))
