"""Reading a case, its parties and its timeline from the registry: what ``hub case show``,
``hub case unfilled`` and the demo print.

A case's parties are its slots as resolved when it opened (registry ``case_parties``): the
partner filling each, or why none does. ``hub case unfilled`` lists the open cases with a
slot nobody fills, for operations.

The case's personal data is not shown, only its state: ``sealed`` (encrypted under the
person's data key), ``erased`` (that key destroyed by ``hub person erase``) or ``not
sealed`` (stored before encryption at rest; the registry seals it when it starts). That
needs no master key: the vault says whether a key is destroyed.

A timeline step's free text about the person (a rejection reason, an action asked of the
citizen) is sealed under the case's key (registry migration 0009). With the master key
the caller passes (a command loads the hub's: ``reader_master_key``) it is shown as
``rejected: <reason>``; once the person is erased as ``rejected: [erased]``; a reader
without the master key sees ``rejected: [sealed]``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import asyncpg

from contracts import Jurisdiction
from hub.errors import ConfigurationError
from hub.runtime.settings import HubSettings
from hub.vault import store as vault_store
from hub.vault.crypto import ERASED_TEXT, Erased, MasterKey, key_id_of
from hub.vault.master import load_master_key

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
class PartyView:
    """A slot of the case: its role, the jurisdiction it needs, who fills it and whether that
    partner is active. A slot with no partner, or whose partner is suspended since, is
    unfilled: no active partner fills it (``unfilled_reason`` says why)."""

    slot: str
    role: str
    jurisdiction: str | None
    partner_id: str | None
    unfilled_reason: str | None
    partner_status: str | None = None

    @property
    def filled(self) -> bool:
        return self.partner_id is not None and self.partner_status == "active"

    def as_text(self) -> str:
        who = self.partner_id if self.filled else f"UNFILLED ({self.unfilled_reason})"
        return f"  {self.slot:<24} {self.role:<20} {self.jurisdiction or '-':<24} {who}"


def _unfilled_reason(row: asyncpg.Record) -> str | None:
    """Why no active partner fills the slot: as resolved, or its partner's status since."""
    if row["partner_id"] is not None and row["partner_status"] != "active":
        return f"{row['partner_id']} is {row['partner_status'] or 'no longer in the register'}"
    return str(row["unfilled_reason"]) if row["unfilled_reason"] is not None else None


@dataclass(frozen=True)
class CaseView:
    case_id: str
    case_type: str
    status: str
    trace_id: str
    opened_at: str
    timeline: tuple[TimelineStep, ...]
    personal_data: str = "sealed"
    parties: tuple[PartyView, ...] = ()

    @property
    def unfilled(self) -> tuple[PartyView, ...]:
        return tuple(p for p in self.parties if not p.filled)

    def as_json(self) -> dict[str, object]:
        return {
            "case_id": self.case_id,
            "case_type": self.case_type,
            "status": self.status,
            "trace_id": self.trace_id,
            "opened_at": self.opened_at,
            "personal_data": self.personal_data,
            "parties": [asdict(party) | {"filled": party.filled} for party in self.parties],
            "unfilled_slots": [party.slot for party in self.unfilled],
            "timeline": [asdict(step) for step in self.timeline],
        }

    def as_text(self) -> str:
        lines = [
            f"case {self.case_id} ({self.case_type}): {self.status}",
            f"trace {self.trace_id}",
            f"personal data {self.personal_data}",
            f"parties ({len(self.unfilled)} unfilled):",
            *(party.as_text() for party in self.parties),
            "timeline:",
        ]
        for step in self.timeline:
            clock = step.time[11:23]
            detail = f"  {step.detail}" if step.detail else ""
            lines.append(f"  {clock}  {step.service:<32} {step.event_type}{detail}")
        return "\n".join(lines)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def reader_master_key(settings: HubSettings) -> MasterKey | None:
    """The master key to open timeline texts with: the hub's ring as ``settings`` find it
    (never created); None where there is none (the texts then show as sealed, nothing fails)."""
    try:
        return load_master_key(settings, create=False)
    except ConfigurationError:
        return None


async def load_case_view(
    conn: asyncpg.Connection, case_id: str, *, master: MasterKey | None
) -> CaseView | None:
    """``master``: opens the sealed timeline texts; None shows them as sealed."""
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
        await _parties(conn, case_id),
    )


_PARTY_COLUMNS = (
    "p.slot, p.role, p.jurisdiction_level, p.bfs_number, p.canton, p.partner_id, p.unfilled_reason, "
    "pa.status AS partner_status"
)
_PARTIES = "registry.case_parties p LEFT JOIN registry.partners pa USING (partner_id)"
# The slots no active partner fills: nobody did when the case opened, or its partner is suspended.
NO_ACTIVE_PARTNER = "(p.partner_id IS NULL OR pa.status IS DISTINCT FROM 'active')"


def _party_view(row: asyncpg.Record) -> PartyView:
    return PartyView(
        row["slot"],
        row["role"],
        _jurisdiction_text(row["jurisdiction_level"], row["bfs_number"], row["canton"]),
        row["partner_id"],
        _unfilled_reason(row),
        row["partner_status"],
    )


def _jurisdiction_text(level: str | None, bfs_number: int | None, canton: str | None) -> str | None:
    if level is None:
        return None
    return str(Jurisdiction.model_validate({"level": level, "bfs_number": bfs_number, "canton": canton}))


async def _parties(conn: asyncpg.Connection, case_id: str) -> tuple[PartyView, ...]:
    rows = await conn.fetch(
        f"SELECT {_PARTY_COLUMNS} FROM {_PARTIES} WHERE p.case_id = $1 ORDER BY p.position", case_id
    )
    return tuple(_party_view(row) for row in rows)


@dataclass(frozen=True)
class UnfilledSlot:
    """An open case waiting for a party nobody fills: what ``hub case unfilled`` lists."""

    case_id: str
    case_type: str
    status: str
    opened_at: str
    party: PartyView

    def as_json(self) -> dict[str, object]:
        return {
            "case_id": self.case_id,
            "case_type": self.case_type,
            "status": self.status,
            "opened_at": self.opened_at,
            **asdict(self.party),
        }

    def as_text(self) -> str:
        return (
            f"{self.case_id}  {self.case_type}  {self.status}  {self.party.slot}  {self.party.role}  "
            f"{self.party.jurisdiction or '-'}  {self.party.unfilled_reason}"
        )


async def load_unfilled_slots(conn: asyncpg.Connection, *, limit: int = 1000) -> list[UnfilledSlot]:
    """Unfilled slots of open cases, oldest case first."""
    rows = await conn.fetch(
        f"SELECT c.case_id, c.case_type, c.status, c.opened_at, {_PARTY_COLUMNS} "
        f"FROM {_PARTIES} JOIN registry.cases c ON c.case_id = p.case_id "
        f"WHERE {NO_ACTIVE_PARTNER} AND c.status IN ('opened', 'in-progress', 'escalated') "
        "ORDER BY c.opened_at, c.case_id, p.position LIMIT $1",
        limit,
    )
    return [
        UnfilledSlot(
            row["case_id"], row["case_type"], row["status"], _iso(row["opened_at"]), _party_view(row)
        )
        for row in rows
    ]


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
