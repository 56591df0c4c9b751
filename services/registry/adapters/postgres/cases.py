"""Cases, their milestones, timelines and pending deliveries in PostgreSQL.

A case's details and a pending delivery's data are split by ``contracts.classification``:
public and internal fields stay in the jsonb column, confidential and secret ones are
sealed under the person's data key (``hub.vault``) in ``details_sealed`` / ``data_sealed``.
Readers get the merged dict; once the person is erased, only the readable half is left
and the case says ``erased``. A timeline step's free text about the person is sealed the
same way.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from contracts import Jurisdiction
from contracts.classification import merge
from hub.cli.casefile import timeline_context
from hub.vault import store as vault_store
from hub.vault.crypto import DataKey, Erased, MasterKey, case_ref
from services.registry.adapters.classified import halves
from services.registry.case_domain import Case
from services.registry.domain import FINAL_STATUSES, CaseStatus
from services.registry.errors import PersonErased
from services.registry.model import NewCase, PendingDelivery, RecordedStep, TimelineStep
from services.registry.parties_domain import Party

_CASE_COLUMNS = (
    "case_id, case_type, status, trace_id, test_delivery, reported_event_id, details, details_sealed, "
    "deadline_at, citizen_id, opened_at"
)
_PARTY_COLUMNS = "slot, role, jurisdiction_level, bfs_number, canton, partner_id, unfilled_reason"


def details_context(case_id: str) -> str:
    """Binds a sealed value to its table, column and row: moved elsewhere, it fails to open."""
    return f"registry.cases.details_sealed:{case_id}"


def pending_context(request_id: str) -> str:
    return f"registry.pending_deliveries.data_sealed:{request_id}"


def jurisdiction_of(row: Any) -> Jurisdiction | None:
    """A jurisdiction is three columns (level, BFS number, canton); the tables' checks keep
    them consistent, so a level always reads back as a valid ``Jurisdiction``."""
    if row["jurisdiction_level"] is None:
        return None
    return Jurisdiction(level=row["jurisdiction_level"], bfs_number=row["bfs_number"], canton=row["canton"])


def party_of(row: Any) -> Party:
    return Party(row["slot"], row["role"], jurisdiction_of(row), row["partner_id"], row["unfilled_reason"])


def _live(key: DataKey | Erased, case_id: str) -> DataKey:
    if isinstance(key, Erased):
        raise PersonErased(f"case {case_id} belongs to an erased person: nothing more is stored for it")
    return key


class Sealing:
    """Sealing and opening personal data on one connection, with the master key passed in."""

    def __init__(self, conn: asyncpg.Connection, master: MasterKey) -> None:
        self._conn, self._master = conn, master

    async def key_of_case(self, case_id: str) -> DataKey | Erased:
        """The case's key: its person's, bound when the case was inserted."""
        return await vault_store.key_for(self._conn, self._master, case_ref(case_id))

    async def key_of_subject(self, case_id: str, subject_vn: str | None) -> DataKey | Erased:
        ref = self._master.subject_ref(subject_vn) if subject_vn is not None else case_ref(case_id)
        return await vault_store.key_for(self._conn, self._master, ref)

    async def merged(self, readable: str, sealed: bytes, context: str) -> tuple[dict[str, Any], bool]:
        """The merged dict, and whether the sealed half is erased."""
        plain: dict[str, Any] = json.loads(readable)
        protected = await vault_store.open_json(self._conn, self._master, sealed, context)
        if isinstance(protected, Erased):
            return plain, True
        return merge(plain, protected), False

    async def opened(self, sealed: list[tuple[bytes, str]]) -> list[Any]:
        return await vault_store.open_json_many(self._conn, self._master, sealed)


class PostgresCases:
    def __init__(self, conn: asyncpg.Connection, sealing: Sealing) -> None:
        self._conn, self._sealing = conn, sealing

    async def add(self, case: NewCase) -> bool:
        key = _live(await self._sealing.key_of_subject(case.case_id, case.subject_vn), case.case_id)
        readable, protected = halves(case.details_type, case.details)
        status = await self._conn.execute(
            """
            INSERT INTO cases (case_id, case_type, status, trace_id, traceparent, test_delivery,
                               reported_event_id, details, details_sealed, deadline_at)
            VALUES ($1, $2, 'opened', $3, $4, $5, $6, $7::jsonb, $8, now() + make_interval(secs => $9))
            ON CONFLICT (case_id) DO NOTHING
            """,
            case.case_id,
            case.case_type,
            case.trace_id,
            case.traceparent,
            case.test_delivery,
            case.reported_event_id,
            json.dumps(readable),
            vault_store.seal_json(key, protected, details_context(case.case_id)),
            case.deadline_s,
        )
        created = bool(status == "INSERT 0 1")
        if created:
            # Only a new case joins the person's ring: a repeated case id must not link two people.
            await vault_store.bind(self._conn, case_ref(case.case_id), key.key_id)
        return created

    async def get(self, case_id: str, *, for_update: bool = False) -> Case | None:
        # FOR NO KEY UPDATE, not FOR UPDATE: it keeps other writers to the case off just as
        # well, but not the key-share locks that inserting a timeline or audit row for the
        # case takes (foreign keys). Batches of other routes add such rows for cases this
        # batch locks, and FOR UPDATE made them wait for each other crosswise: a deadlock.
        lock = " FOR NO KEY UPDATE" if for_update else ""
        row = await self._conn.fetchrow(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1{lock}", case_id
        )
        return None if row is None else await self._case(row)

    async def exists(self, case_id: str) -> bool:
        return bool(
            await self._conn.fetchval("SELECT EXISTS (SELECT 1 FROM cases WHERE case_id = $1)", case_id)
        )

    async def claim_overdue(self, limit: int) -> list[tuple[Case, str | None]]:
        rows = await self._conn.fetch(
            f"""
            SELECT {_CASE_COLUMNS}, traceparent FROM cases
            WHERE status IN ('opened', 'in-progress') AND deadline_at < now()
            ORDER BY deadline_at LIMIT $1 FOR UPDATE SKIP LOCKED
            """,
            limit,
        )
        return [(await self._case(row), row["traceparent"]) for row in rows]

    async def set_status(self, case_id: str, status: CaseStatus) -> None:
        await self._conn.execute(
            "UPDATE cases SET status = $2, updated_at = now(), closed_at = CASE WHEN $3 THEN now() END "
            "WHERE case_id = $1",
            case_id,
            status.value,
            status in FINAL_STATUSES,
        )

    async def set_citizen_id(self, case_id: str, citizen_id: str) -> None:
        await self._conn.execute("UPDATE cases SET citizen_id = $2 WHERE case_id = $1", case_id, citizen_id)

    async def add_milestone(self, case_id: str, milestone: str, partner_id: str, event_id: str) -> None:
        await self._conn.execute(
            "INSERT INTO case_milestones (case_id, milestone, partner_id, event_id) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            case_id,
            milestone,
            partner_id,
            event_id,
        )

    async def _case(self, row: Any) -> Case:
        case_id = row["case_id"]
        details, erased = await self._sealing.merged(
            row["details"], row["details_sealed"], details_context(case_id)
        )
        parties = await self._conn.fetch(
            f"SELECT {_PARTY_COLUMNS} FROM case_parties WHERE case_id = $1 ORDER BY position", case_id
        )
        milestones = await self._conn.fetch(
            "SELECT milestone FROM case_milestones WHERE case_id = $1", case_id
        )
        return Case(
            case_id=case_id,
            case_type=row["case_type"],
            status=CaseStatus(row["status"]),
            trace_id=row["trace_id"],
            test_delivery=row["test_delivery"],
            reported_event_id=row["reported_event_id"],
            details=details,
            deadline_at=row["deadline_at"],
            citizen_id=row["citizen_id"],
            opened_at=row["opened_at"],
            erased=erased,
            parties=tuple(party_of(p) for p in parties),
            milestones=frozenset(m["milestone"] for m in milestones),
        )


class PostgresTimeline:
    def __init__(self, conn: asyncpg.Connection, sealing: Sealing) -> None:
        self._conn, self._sealing = conn, sealing

    async def add(self, step: TimelineStep) -> None:
        entry_id: int | None = None
        sealed = None
        if step.confidential is not None:
            # The sealed text is bound to its row's id (the AEAD context), so the id is taken
            # first; a step with nothing to seal takes it in its INSERT, one statement.
            entry_id = await self._conn.fetchval("SELECT nextval(pg_get_serial_sequence('timeline', 'id'))")
            # Under an erased person's key the text is not stored at all: the tombstone reads as erased.
            key = await self._sealing.key_of_case(step.case_id)
            sealed = vault_store.seal_json(key, step.confidential, timeline_context(entry_id))
        await self._conn.execute(
            """
            INSERT INTO timeline (id, case_id, service, event_type, event_id, trace_id, detail, detail_sealed)
            VALUES (coalesce($1, nextval(pg_get_serial_sequence('timeline', 'id'))),
                    $2, $3, $4, $5, $6, $7, $8)
            """,
            entry_id,
            step.case_id,
            step.service,
            step.event_type,
            step.event_id,
            step.trace_id,
            step.detail,
            sealed,
        )

    async def of_case(self, case_id: str) -> list[RecordedStep]:
        rows = await self._conn.fetch(
            "SELECT id, service, event_type, event_id, trace_id, detail, detail_sealed FROM timeline "
            "WHERE case_id = $1 ORDER BY id",
            case_id,
        )
        sealed = [(row["detail_sealed"], timeline_context(row["id"])) for row in rows if row["detail_sealed"]]
        texts = iter(await self._sealing.opened(sealed))
        steps = []
        for row in rows:
            text = next(texts) if row["detail_sealed"] else None
            steps.append(
                RecordedStep(
                    row["service"],
                    row["event_type"],
                    row["event_id"],
                    row["trace_id"],
                    row["detail"],
                    None if isinstance(text, Erased) else text,
                    erased=isinstance(text, Erased),
                )
            )
        return steps


class PostgresPending:
    def __init__(self, conn: asyncpg.Connection, sealing: Sealing) -> None:
        self._conn, self._sealing = conn, sealing

    async def add(self, pending: PendingDelivery) -> None:
        key = _live(await self._sealing.key_of_case(pending.case_id), pending.case_id)
        readable, protected = halves(pending.event_type, pending.data)
        await self._conn.execute(
            "INSERT INTO pending_deliveries (request_id, case_id, event_id, event_type, data, data_sealed) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            pending.request_id,
            pending.case_id,
            pending.event_id,
            pending.event_type,
            json.dumps(readable),
            vault_store.seal_json(key, protected, pending_context(pending.request_id)),
        )

    async def take(self, request_id: str) -> PendingDelivery | None:
        row = await self._conn.fetchrow(
            "DELETE FROM pending_deliveries WHERE request_id = $1 "
            "RETURNING case_id, event_id, event_type, data, data_sealed",
            request_id,
        )
        if row is None:
            return None
        data, erased = await self._sealing.merged(
            row["data"], row["data_sealed"], pending_context(request_id)
        )
        if erased:
            return None
        return PendingDelivery(request_id, row["case_id"], row["event_id"], row["event_type"], data)
