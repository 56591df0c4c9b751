"""SQL of the registry. Functions take the handler's transaction and stay in its schema.

Personal data at rest (issue 5): a case's details and a pending delivery's data are split
by ``contracts.classification``; public and internal fields stay in the jsonb column,
confidential and secret ones are sealed under the person's data key (``hub/vault.py``)
in ``details_sealed`` / ``data_sealed``. Handlers see the merged dict as before; once the
person is erased, only the readable half is left and the case says ``erased``. A timeline
step's free text about the person is sealed the same way (``add_timeline``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from contracts import Jurisdiction, contract_for
from contracts.classification import merge, split
from contracts.errors import UnknownEventType
from hub.cli.casefile import timeline_context
from hub.errors import PermanentError
from hub.runtime.outbox import Transaction
from hub.vault import store as vault_store
from hub.vault.crypto import DataKey, Erased, case_ref
from hub.vault.master import installed
from services.registry.domain import CaseStatus
from services.registry.party_repository import jurisdiction_of
from services.registry.subscriptions_domain import (
    PARTY,
    Grant,
    Subscription,
    delivered_basis,
    delivered_fields,
    delivered_text,
)


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    sector: str
    roles: tuple[str, ...]
    delivery_topic: str
    status: str
    jurisdiction: Jurisdiction | None = None


@dataclass(frozen=True)
class CatalogEntry:
    event_type: str
    publisher_roles: tuple[str, ...]
    sensitivity: str


@dataclass(frozen=True)
class Subscribed:
    """An approved subscription of an active partner, with where that partner receives."""

    subscription: Subscription
    sector: str
    delivery_topic: str


@dataclass(frozen=True)
class Subscriber:
    """A partner receiving one delivery of a case's event: where it goes, and the
    subscriptions that apply to the case (``grants``, set by ``parties.recipients``), each
    recorded in the audit log with the basis it applies on."""

    partner_id: str
    sector: str
    delivery_topic: str
    grants: tuple[Grant, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return delivered_fields(self.grants)

    @property
    def purpose(self) -> str:
        return delivered_text(grant.purpose for grant in self.grants)

    @property
    def legal_basis(self) -> str:
        return delivered_text(grant.legal_basis for grant in self.grants)

    @property
    def basis(self) -> str | None:
        """Why this partner receives the case's event at all; None: no subscription applies."""
        return delivered_basis(self.grants) if self.grants else None


@dataclass(frozen=True)
class Case:
    case_id: str
    case_type: str
    status: CaseStatus
    trace_id: str
    test_delivery: bool
    reported_event_id: str
    details: dict[str, Any]
    deadline_at: dt.datetime | None
    citizen_id: str | None = None
    # The person's data key is destroyed: ``details`` holds only public and internal fields.
    erased: bool = False


_CASE_COLUMNS = (
    "case_id, case_type, status, trace_id, test_delivery, reported_event_id, details, details_sealed, "
    "deadline_at, citizen_id"
)


def details_context(case_id: str) -> str:
    """Binds a sealed value to its table, column and row: moved elsewhere, it fails to open."""
    return f"registry.cases.details_sealed:{case_id}"


def pending_context(request_id: str) -> str:
    return f"registry.pending_deliveries.data_sealed:{request_id}"


async def _case(tx: Transaction, row: Any) -> Case:
    details, erased = await _unsealed(
        tx, row["details"], row["details_sealed"], details_context(row["case_id"])
    )
    return Case(
        row["case_id"],
        row["case_type"],
        CaseStatus(row["status"]),
        row["trace_id"],
        row["test_delivery"],
        row["reported_event_id"],
        details,
        row["deadline_at"],
        row["citizen_id"],
        erased,
    )


async def _unsealed(
    tx: Transaction, readable: str, sealed: bytes | None, context: str
) -> tuple[dict[str, Any], bool]:
    """The merged dict and whether the sealed half is erased. No sealed half: a row written
    before migration 0008, whose jsonb still holds everything until it is sealed at start."""
    plain: dict[str, Any] = json.loads(readable)
    if sealed is None:
        return plain, False
    protected = await vault_store.open_json(tx.conn, installed(), sealed, context)
    if isinstance(protected, Erased):
        return plain, True
    return merge(plain, protected), False


def halves(event_type: str | None, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Readable and protected fields of ``data``; all protected if the type is not known."""
    try:
        model = contract_for(event_type) if event_type is not None else None
    except UnknownEventType:
        model = None
    return split(model, data)


def _live(key: DataKey | Erased, case_id: str) -> DataKey:
    if isinstance(key, Erased):
        raise PermanentError(f"case {case_id} belongs to an erased person: nothing more is stored for it")
    return key


async def partner(tx: Transaction, partner_id: str) -> Partner | None:
    row = await tx.conn.fetchrow(
        "SELECT partner_id, name, sector, roles, delivery_topic, status, "
        "jurisdiction_level, bfs_number, canton FROM partners WHERE partner_id = $1",
        partner_id,
    )
    if row is None:
        return None
    return Partner(
        row["partner_id"],
        row["name"],
        row["sector"],
        tuple(row["roles"]),
        row["delivery_topic"],
        row["status"],
        jurisdiction_of(row),
    )


async def upsert_partner(
    tx: Transaction,
    *,
    partner_id: str,
    name: str,
    sector: str,
    roles: tuple[str, ...],
    delivery_topic: str,
    status: str,
    local_person_id_category: str | None,
    sedex_id: str | None,
    jurisdiction: Jurisdiction,
) -> None:
    await tx.conn.execute(
        """
        INSERT INTO partners (partner_id, name, sector, roles, delivery_topic, status,
                              local_person_id_category, sedex_id, jurisdiction_level, bfs_number, canton)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (partner_id) DO UPDATE SET name = $2, sector = $3, roles = $4, delivery_topic = $5,
            status = $6, local_person_id_category = $7, sedex_id = $8, jurisdiction_level = $9,
            bfs_number = $10, canton = $11
        """,
        partner_id,
        name,
        sector,
        list(roles),
        delivery_topic,
        status,
        local_person_id_category,
        sedex_id,
        jurisdiction.level,
        jurisdiction.bfs_number,
        jurisdiction.canton,
    )


async def set_partner_status(tx: Transaction, partner_id: str, status: str) -> None:
    await tx.conn.execute("UPDATE partners SET status = $2 WHERE partner_id = $1", partner_id, status)


async def catalog_entry(tx: Transaction, event_type: str) -> CatalogEntry | None:
    row = await tx.conn.fetchrow(
        "SELECT event_type, publisher_roles, sensitivity FROM catalog WHERE event_type = $1", event_type
    )
    return (
        None
        if row is None
        else CatalogEntry(row["event_type"], tuple(row["publisher_roles"]), row["sensitivity"])
    )


async def subscriptions_to(tx: Transaction, event_type: str, case_type: str) -> list[Subscribed]:
    """Approved subscriptions of active partners to ``event_type``, of every case. Routing
    narrows them to a case's parties and their slots (``parties.recipients``); nothing
    delivers from here."""
    rows = await tx.conn.fetch(
        """
        SELECT p.partner_id, p.sector, p.delivery_topic, s.purpose, s.legal_basis, s.fields, s.scope, s.slot
        FROM subscriptions s JOIN partners p USING (partner_id)
        WHERE s.event_type = $1 AND (s.case_type IS NULL OR s.case_type = $2)
          AND s.status = 'approved' AND p.status = 'active'
        ORDER BY p.partner_id, s.id
        """,
        event_type,
        case_type,
    )
    return [
        Subscribed(
            Subscription(
                r["partner_id"], r["purpose"], r["legal_basis"], tuple(r["fields"]), r["scope"], r["slot"]
            ),
            r["sector"],
            r["delivery_topic"],
        )
        for r in rows
    ]


async def upsert_subscription(
    tx: Transaction,
    *,
    partner_id: str,
    event_type: str,
    case_type: str | None,
    purpose: str,
    legal_basis: str,
    legal_basis_url: str | None,
    fields: tuple[str, ...],
    retention_days: int,
    status: str,
    scope: str = PARTY,
    slot: str | None = None,
) -> None:
    """One subscription per partner, type, case type and slot: a command naming another
    slot is another subscription, one naming the same replaces it."""
    await tx.conn.execute(
        """
        INSERT INTO subscriptions (partner_id, event_type, case_type, purpose, legal_basis, legal_basis_url,
                                   fields, retention_days, status, scope, slot)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (partner_id, event_type, coalesce(case_type, ''), coalesce(slot, '')) DO UPDATE SET
            purpose = $4, legal_basis = $5, legal_basis_url = $6, fields = $7, retention_days = $8,
            status = $9, scope = $10, updated_at = now()
        """,
        partner_id,
        event_type,
        case_type,
        purpose,
        legal_basis,
        legal_basis_url,
        list(fields),
        retention_days,
        status,
        scope,
        slot,
    )


async def insert_case(
    tx: Transaction,
    *,
    case_id: str,
    case_type: str,
    trace_id: str,
    traceparent: str | None,
    test_delivery: bool,
    reported_event_id: str,
    details: dict[str, Any],
    deadline_s: float,
    details_type: str | None = None,
    subject_vn: str | None = None,
) -> bool:
    """``details_type``: the contract ``details`` are the data of (it classifies them);
    ``subject_vn``: the AHVN13 of the case's person, used only to find their data key, so
    that the case is sealed under the person's key from its first write (``hub/vault.py``).
    Without one, the case gets a key of its own."""
    master = installed()
    ref = master.subject_ref(subject_vn) if subject_vn is not None else case_ref(case_id)
    key = _live(await vault_store.key_for(tx.conn, master, ref), case_id)
    readable, protected = halves(details_type, details)
    status = await tx.conn.execute(
        """
        INSERT INTO cases (case_id, case_type, status, trace_id, traceparent, test_delivery,
                           reported_event_id,
                           details, details_sealed, deadline_at)
        VALUES ($1, $2, 'opened', $3, $4, $5, $6, $7::jsonb, $8, now() + make_interval(secs => $9))
        ON CONFLICT (case_id) DO NOTHING
        """,
        case_id,
        case_type,
        trace_id,
        traceparent,
        test_delivery,
        reported_event_id,
        json.dumps(readable),
        vault_store.seal_json(key, protected, details_context(case_id)),
        deadline_s,
    )
    created = bool(status == "INSERT 0 1")
    if created:
        # Only a new case joins the person's ring: a repeated case id must not link two people.
        await vault_store.bind(tx.conn, case_ref(case_id), key.key_id)
    return created


async def load_case(tx: Transaction, case_id: str, *, for_update: bool = False) -> Case | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await tx.conn.fetchrow(f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1{lock}", case_id)
    return None if row is None else await _case(tx, row)


async def claim_overdue(tx: Transaction, limit: int) -> list[tuple[Case, str | None]]:
    """Open cases past their deadline, locked so that one registry escalates each once."""
    rows = await tx.conn.fetch(
        f"""
        SELECT {_CASE_COLUMNS}, traceparent FROM cases
        WHERE status IN ('opened', 'in-progress') AND deadline_at < now()
        ORDER BY deadline_at LIMIT $1 FOR UPDATE SKIP LOCKED
        """,
        limit,
    )
    return [(await _case(tx, row), row["traceparent"]) for row in rows]


async def set_citizen_id(tx: Transaction, case_id: str, citizen_id: str) -> None:
    await tx.conn.execute("UPDATE cases SET citizen_id = $2 WHERE case_id = $1", case_id, citizen_id)


async def set_status(tx: Transaction, case_id: str, status: CaseStatus) -> None:
    closed = status in (CaseStatus.COMPLETED, CaseStatus.REJECTED)
    await tx.conn.execute(
        "UPDATE cases SET status = $2, updated_at = now(), closed_at = CASE WHEN $3 THEN now() END "
        "WHERE case_id = $1",
        case_id,
        status.value,
        closed,
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


async def add_pending(
    tx: Transaction, request_id: str, case_id: str, event_id: str, event_type: str, data: dict[str, Any]
) -> None:
    # Sealed under the case's key: the person's, bound when the case was inserted.
    key = _live(await vault_store.key_for(tx.conn, installed(), case_ref(case_id)), case_id)
    readable, protected = halves(event_type, data)
    await tx.conn.execute(
        "INSERT INTO pending_deliveries (request_id, case_id, event_id, event_type, data, data_sealed) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        request_id,
        case_id,
        event_id,
        event_type,
        json.dumps(readable),
        vault_store.seal_json(key, protected, pending_context(request_id)),
    )


async def take_pending(tx: Transaction, request_id: str) -> tuple[str, str, dict[str, Any]] | None:
    """The waiting event, removed; None if there is none, or if its person was erased
    meanwhile (nothing is left to deliver)."""
    row = await tx.conn.fetchrow(
        "DELETE FROM pending_deliveries WHERE request_id = $1 "
        "RETURNING event_id, event_type, data, data_sealed",
        request_id,
    )
    if row is None:
        return None
    data, erased = await _unsealed(tx, row["data"], row["data_sealed"], pending_context(request_id))
    return None if erased else (row["event_id"], row["event_type"], data)


async def add_timeline(
    tx: Transaction,
    *,
    case_id: str,
    service: str,
    event_type: str,
    event_id: str,
    trace_id: str,
    detail: str | None = None,
    confidential: str | None = None,
) -> None:
    """``detail`` is stored in clear: it must name or quote no one. ``confidential`` is free
    text a partner wrote about the person (a rejection reason, an action asked of them): it
    is sealed under the case's data key, and readers show ``<detail>: <text>``."""
    entry_id: int = await tx.conn.fetchval("SELECT nextval(pg_get_serial_sequence('timeline', 'id'))")
    sealed = None
    if confidential is not None:
        # The case's key is the person's (bound when the case was inserted); an erased
        # person's text is not stored at all: the tombstone reads as erased.
        key = await vault_store.key_for(tx.conn, installed(), case_ref(case_id))
        sealed = vault_store.seal_json(key, confidential, timeline_context(entry_id))
    await tx.conn.execute(
        "INSERT INTO timeline (id, case_id, service, event_type, event_id, trace_id, detail, detail_sealed) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        entry_id,
        case_id,
        service,
        event_type,
        event_id,
        trace_id,
        detail,
        sealed,
    )
