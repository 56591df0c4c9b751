"""Reading a case and its timeline from the registry: what ``hub case show`` and the demo print.

The case's personal data is not shown, only its state: ``sealed`` (encrypted under the
person's data key), ``erased`` (that key destroyed by ``hub person erase``) or ``not
sealed`` (stored before encryption at rest; the registry seals it when it starts). That
needs no master key: the vault says whether a key is destroyed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import asyncpg

from hub.vault import key_id_of


@dataclass(frozen=True)
class TimelineStep:
    service: str
    event_type: str
    time: str
    trace_id: str
    detail: str | None


@dataclass(frozen=True)
class CaseView:
    case_id: str
    case_type: str
    status: str
    trace_id: str
    opened_at: str
    timeline: tuple[TimelineStep, ...]
    personal_data: str = "sealed"

    def as_json(self) -> dict[str, object]:
        return {
            "case_id": self.case_id,
            "case_type": self.case_type,
            "status": self.status,
            "trace_id": self.trace_id,
            "opened_at": self.opened_at,
            "personal_data": self.personal_data,
            "timeline": [asdict(step) for step in self.timeline],
        }

    def as_text(self) -> str:
        lines = [
            f"case {self.case_id} ({self.case_type}): {self.status}",
            f"trace {self.trace_id}",
            f"personal data {self.personal_data}",
        ]
        for step in self.timeline:
            clock = step.time[11:23]
            detail = f"  {step.detail}" if step.detail else ""
            lines.append(f"  {clock}  {step.service:<32} {step.event_type}{detail}")
        return "\n".join(lines)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def load_case_view(conn: asyncpg.Connection, case_id: str) -> CaseView | None:
    case = await conn.fetchrow(
        "SELECT case_id, case_type, status, trace_id, opened_at, details_sealed FROM registry.cases "
        "WHERE case_id = $1",
        case_id,
    )
    if case is None:
        return None
    rows = await conn.fetch(
        "SELECT service, event_type, time, trace_id, detail FROM registry.timeline "
        "WHERE case_id = $1 ORDER BY time, id",
        case_id,
    )
    steps = tuple(
        TimelineStep(r["service"], r["event_type"], _iso(r["time"]), r["trace_id"], r["detail"]) for r in rows
    )
    return CaseView(
        case["case_id"],
        case["case_type"],
        case["status"],
        case["trace_id"],
        _iso(case["opened_at"]),
        steps,
        await _personal_data(conn, case["details_sealed"]),
    )


async def _personal_data(conn: asyncpg.Connection, sealed: bytes | None) -> str:
    if sealed is None:
        return "not sealed"
    destroyed = await conn.fetchval(
        "SELECT destroyed_at IS NOT NULL FROM vault.data_keys WHERE key_id = $1", key_id_of(bytes(sealed))
    )
    return "sealed" if destroyed is False else "erased"  # no key row at all: nothing can open it
