"""Reading a case and its timeline from the registry: what ``hub case show`` and the demo print.

The case's personal data is not shown, only its state: ``sealed`` (encrypted under the
person's data key), ``erased`` (that key destroyed by ``hub person erase``) or ``not
sealed`` (stored before encryption at rest; the registry seals it when it starts). That
needs no master key: the vault says whether a key is destroyed.

A timeline step's free text about the person (a rejection reason, an action asked of the
citizen) is sealed under the case's key (registry migration 0009). With the master key
(the one installed in this process, else ``HUB_MASTER_KEY_FILE``) it is shown as
``rejected: <reason>``; once the person is erased as ``rejected: [erased]``; a reader
without the master key sees ``rejected: [sealed]``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import asdict, dataclass

import asyncpg

from hub import vault_store
from hub.errors import ConfigurationError
from hub.settings import HubSettings
from hub.vault import ERASED_TEXT, Erased, MasterKey, key_id_of
from hub.vault_master import installed, load_master_key

SEALED_TEXT = "[sealed]"  # shown by a reader without the master key
UNREADABLE_TEXT = "[unreadable]"  # a sealed text that fails authentication (changed or moved)


def timeline_context(entry_id: int) -> str:
    """Binds a sealed timeline text to its table, column and row (``hub/vault.py``)."""
    return f"registry.timeline.detail_sealed:{entry_id}"


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


def reader_master_key(settings: HubSettings) -> MasterKey | None:
    """The master key to open timeline texts with: this process's, else the hub's file;
    None where there is none (the texts then show as sealed, nothing fails)."""
    with contextlib.suppress(ConfigurationError):
        return installed()
    try:
        return load_master_key(settings, create=False)
    except ConfigurationError:
        return None


async def load_case_view(
    conn: asyncpg.Connection, case_id: str, *, master: MasterKey | None = None
) -> CaseView | None:
    """``master``: opens the sealed timeline texts; None uses the key installed in this
    process, if any."""
    case = await conn.fetchrow(
        "SELECT case_id, case_type, status, trace_id, opened_at, details_sealed FROM registry.cases "
        "WHERE case_id = $1",
        case_id,
    )
    if case is None:
        return None
    rows = await conn.fetch(
        "SELECT id, service, event_type, time, trace_id, detail, detail_sealed FROM registry.timeline "
        "WHERE case_id = $1 ORDER BY time, id",
        case_id,
    )
    details = await _details(conn, rows, master)
    steps = tuple(
        TimelineStep(r["service"], r["event_type"], _iso(r["time"]), r["trace_id"], detail)
        for r, detail in zip(rows, details, strict=True)
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


async def _details(
    conn: asyncpg.Connection, rows: list[asyncpg.Record], master: MasterKey | None
) -> list[str | None]:
    """Each step's detail with its sealed text opened (one key lookup for all of them)."""
    if master is None:
        with contextlib.suppress(ConfigurationError):
            master = installed()
    sealed = [(bytes(r["detail_sealed"]), timeline_context(r["id"])) for r in rows if r["detail_sealed"]]
    texts = iter(await vault_store.open_json_each(conn, master, sealed) if master and sealed else [])
    details: list[str | None] = []
    for row in rows:
        if row["detail_sealed"] is None:
            details.append(row["detail"])
        elif master is None:
            details.append(f"{row['detail']}: {SEALED_TEXT}")
        else:
            text = next(texts)
            if isinstance(text, Erased):
                text = ERASED_TEXT
            elif not isinstance(text, str):  # TamperedCiphertext: changed, or moved from another row
                text = UNREADABLE_TEXT
            details.append(f"{row['detail']}: {text}")
    return details
