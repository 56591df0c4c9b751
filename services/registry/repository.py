"""SQL of the registry. Functions take the handler's transaction and stay in its schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub.messages import Transaction
from services.registry.domain import CaseStatus


@dataclass(frozen=True)
class Subscriber:
    partner_id: str
    sector: str
    delivery_topic: str
    legal_basis: str


@dataclass(frozen=True)
class Case:
    case_id: str
    case_type: str
    status: CaseStatus
    trace_id: str
    test_delivery: bool
    reported_event_id: str
    details: dict[str, Any]


async def subscribers_of(tx: Transaction, event_type: str) -> list[Subscriber]:
    """Only approved subscriptions of active partners route."""
    rows = await tx.conn.fetch(
        """
        SELECT p.partner_id, p.sector, p.delivery_topic, s.legal_basis
        FROM subscriptions s JOIN partners p USING (partner_id)
        WHERE s.event_type = $1 AND s.status = 'approved' AND p.status = 'active'
        ORDER BY p.partner_id
        """,
        event_type,
    )
    return [Subscriber(r["partner_id"], r["sector"], r["delivery_topic"], r["legal_basis"]) for r in rows]


async def insert_case(
    tx: Transaction,
    *,
    case_id: str,
    case_type: str,
    trace_id: str,
    test_delivery: bool,
    reported_event_id: str,
    details: dict[str, Any],
) -> bool:
    status = await tx.conn.execute(
        """
        INSERT INTO cases (case_id, case_type, status, trace_id, test_delivery, reported_event_id, details)
        VALUES ($1, $2, 'opened', $3, $4, $5, $6::jsonb) ON CONFLICT (case_id) DO NOTHING
        """,
        case_id,
        case_type,
        trace_id,
        test_delivery,
        reported_event_id,
        json.dumps(details),
    )
    return bool(status == "INSERT 0 1")


async def load_case(tx: Transaction, case_id: str, *, for_update: bool = False) -> Case | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await tx.conn.fetchrow(
        "SELECT case_id, case_type, status, trace_id, test_delivery, reported_event_id, details "
        f"FROM cases WHERE case_id = $1{lock}",
        case_id,
    )
    if row is None:
        return None
    return Case(
        row["case_id"],
        row["case_type"],
        CaseStatus(row["status"]),
        row["trace_id"],
        row["test_delivery"],
        row["reported_event_id"],
        json.loads(row["details"]),
    )


async def set_status(tx: Transaction, case_id: str, status: CaseStatus) -> None:
    await tx.conn.execute(
        "UPDATE cases SET status = $2, updated_at = now() WHERE case_id = $1", case_id, status.value
    )


async def add_milestone(
    tx: Transaction, case_id: str, milestone: str, partner_id: str, event_id: str
) -> None:
    await tx.conn.execute(
        "INSERT INTO case_milestones (case_id, milestone, partner_id, event_id) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        case_id,
        milestone,
        partner_id,
        event_id,
    )


async def reached_milestones(tx: Transaction, case_id: str) -> frozenset[str]:
    rows = await tx.conn.fetch("SELECT milestone FROM case_milestones WHERE case_id = $1", case_id)
    return frozenset(r["milestone"] for r in rows)


async def add_timeline(
    tx: Transaction,
    *,
    case_id: str,
    service: str,
    event_type: str,
    event_id: str,
    trace_id: str,
    detail: str | None = None,
) -> None:
    await tx.conn.execute(
        "INSERT INTO timeline (case_id, service, event_type, event_id, trace_id, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        case_id,
        service,
        event_type,
        event_id,
        trace_id,
        detail,
    )
