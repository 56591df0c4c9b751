"""SQL of case parties (``case_parties``) and of the partners that may fill them.

A jurisdiction is stored as three columns (level, BFS number, canton) in ``partners`` and
in ``case_parties``; the tables' checks keep them consistent, so a level always reads back
as a valid ``Jurisdiction``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contracts import Jurisdiction
from hub.runtime.outbox import Transaction
from services.registry.parties_domain import Candidate, Party

OPEN_STATUSES = ("opened", "in-progress", "escalated")


@dataclass(frozen=True)
class OpenSlot:
    """An unfilled slot of an open case, as late filling looks for it."""

    case_id: str
    case_type: str
    trace_id: str
    party: Party


def jurisdiction_of(row: Any) -> Jurisdiction | None:
    if row["jurisdiction_level"] is None:
        return None
    return Jurisdiction(level=row["jurisdiction_level"], bfs_number=row["bfs_number"], canton=row["canton"])


def _columns(jurisdiction: Jurisdiction | None) -> tuple[str | None, int | None, str | None]:
    if jurisdiction is None:
        return None, None, None
    return jurisdiction.level, jurisdiction.bfs_number, jurisdiction.canton


def _candidate(row: Any) -> Candidate:
    return Candidate(row["partner_id"], tuple(row["roles"]), jurisdiction_of(row), row["status"] == "active")


async def candidates(tx: Transaction, roles: Iterable[str]) -> list[Candidate]:
    """Every partner holding one of ``roles``, active or not (the rules decide)."""
    rows = await tx.conn.fetch(
        "SELECT partner_id, roles, status, jurisdiction_level, bfs_number, canton FROM partners "
        "WHERE roles && $1::text[] ORDER BY partner_id",
        sorted(set(roles)),
    )
    return [_candidate(row) for row in rows]


async def candidate(tx: Transaction, partner_id: str) -> Candidate | None:
    row = await tx.conn.fetchrow(
        "SELECT partner_id, roles, status, jurisdiction_level, bfs_number, canton FROM partners "
        "WHERE partner_id = $1",
        partner_id,
    )
    return None if row is None else _candidate(row)


async def insert_parties(tx: Transaction, case_id: str, parties: Sequence[Party]) -> None:
    await tx.conn.executemany(
        """
        INSERT INTO case_parties (case_id, slot, position, role, jurisdiction_level, bfs_number, canton,
                                  partner_id, unfilled_reason, filled_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $8::text IS NULL THEN NULL ELSE now() END)
        """,
        [
            (case_id, p.slot, position, p.role, *_columns(p.jurisdiction), p.partner_id, p.unfilled_reason)
            for position, p in enumerate(parties)
        ],
    )


def _party(row: Any) -> Party:
    return Party(row["slot"], row["role"], jurisdiction_of(row), row["partner_id"], row["unfilled_reason"])


async def parties_of(tx: Transaction, case_id: str) -> tuple[Party, ...]:
    rows = await tx.conn.fetch(
        "SELECT slot, role, jurisdiction_level, bfs_number, canton, partner_id, unfilled_reason "
        "FROM case_parties WHERE case_id = $1 ORDER BY position",
        case_id,
    )
    return tuple(_party(row) for row in rows)


async def open_slots_needing(tx: Transaction, candidate: Candidate) -> list[OpenSlot]:
    """Unfilled slots of open cases that ``candidate``'s roles and jurisdiction would fill,
    locked (with their case) so that one registry fills each once."""
    if candidate.jurisdiction is None:
        return []
    level, bfs_number, canton = _columns(candidate.jurisdiction)
    rows = await tx.conn.fetch(
        """
        SELECT c.case_id, c.case_type, c.trace_id, p.slot, p.role, p.jurisdiction_level, p.bfs_number,
               p.canton, p.partner_id, p.unfilled_reason
        FROM case_parties p JOIN cases c USING (case_id)
        WHERE p.partner_id IS NULL AND p.role = ANY($1::text[])
          AND p.jurisdiction_level = $2
          AND p.bfs_number IS NOT DISTINCT FROM $3 AND p.canton IS NOT DISTINCT FROM $4
          AND c.status = ANY($5::text[])
        ORDER BY c.case_id, p.position
        FOR UPDATE OF p, c
        """,
        list(candidate.roles),
        level,
        bfs_number,
        canton,
        list(OPEN_STATUSES),
    )
    return [OpenSlot(row["case_id"], row["case_type"], row["trace_id"], _party(row)) for row in rows]


async def set_filled(tx: Transaction, case_id: str, slot: str, partner_id: str) -> None:
    await tx.conn.execute(
        "UPDATE case_parties SET partner_id = $3, unfilled_reason = NULL, filled_at = now() "
        "WHERE case_id = $1 AND slot = $2 AND partner_id IS NULL",
        case_id,
        slot,
        partner_id,
    )


async def set_unfilled_reason(tx: Transaction, case_id: str, slot: str, reason: str) -> None:
    await tx.conn.execute(
        "UPDATE case_parties SET unfilled_reason = $3"
        " WHERE case_id = $1 AND slot = $2 AND partner_id IS NULL",
        case_id,
        slot,
        reason,
    )
