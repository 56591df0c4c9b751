"""Partners, the catalogue, subscriptions, case parties and partners' keys in PostgreSQL.

Partners and their keys are the registry's mirror of identity's register; the catalogue
is the migrations'; subscriptions belong to the registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from contracts import Jurisdiction
from services.registry.adapters.postgres.cases import jurisdiction_of, party_of
from services.registry.model import (
    CatalogEntry,
    OpenSlot,
    Partner,
    PartnerKey,
    Subscribed,
    SubscriptionRecord,
)
from services.registry.parties_domain import Candidate, Party
from services.registry.subscriptions_domain import Subscription

OPEN_STATUSES = ("opened", "in-progress", "escalated")
_CANDIDATE_COLUMNS = "partner_id, roles, status, jurisdiction_level, bfs_number, canton"


def _columns(jurisdiction: Jurisdiction | None) -> tuple[str | None, int | None, str | None]:
    if jurisdiction is None:
        return None, None, None
    return jurisdiction.level, jurisdiction.bfs_number, jurisdiction.canton


def _candidate(row: Any) -> Candidate:
    return Candidate(row["partner_id"], tuple(row["roles"]), jurisdiction_of(row), row["status"] == "active")


class PostgresPartners:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, partner_id: str) -> Partner | None:
        row = await self._conn.fetchrow(
            "SELECT partner_id, name, sector, roles, delivery_topic, status, local_person_id_category, "
            "sedex_id, jurisdiction_level, bfs_number, canton FROM partners WHERE partner_id = $1",
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
            row["local_person_id_category"],
            row["sedex_id"],
        )

    async def put(self, partner: Partner) -> None:
        await self._conn.execute(
            """
            INSERT INTO partners (partner_id, name, sector, roles, delivery_topic, status,
                                  local_person_id_category, sedex_id, jurisdiction_level, bfs_number, canton)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (partner_id) DO UPDATE SET name = $2, sector = $3, roles = $4, delivery_topic = $5,
                status = $6, local_person_id_category = $7, sedex_id = $8, jurisdiction_level = $9,
                bfs_number = $10, canton = $11
            """,
            partner.partner_id,
            partner.name,
            partner.sector,
            list(partner.roles),
            partner.delivery_topic,
            partner.status,
            partner.local_person_id_category,
            partner.sedex_id,
            *_columns(partner.jurisdiction),
        )

    async def set_status(self, partner_id: str, status: str) -> None:
        await self._conn.execute("UPDATE partners SET status = $2 WHERE partner_id = $1", partner_id, status)

    async def candidates(self, roles: Iterable[str]) -> list[Candidate]:
        rows = await self._conn.fetch(
            f"SELECT {_CANDIDATE_COLUMNS} FROM partners WHERE roles && $1::text[] ORDER BY partner_id",
            sorted(set(roles)),
        )
        return [_candidate(row) for row in rows]

    async def candidate(self, partner_id: str) -> Candidate | None:
        row = await self._conn.fetchrow(
            f"SELECT {_CANDIDATE_COLUMNS} FROM partners WHERE partner_id = $1", partner_id
        )
        return None if row is None else _candidate(row)


class PostgresCatalogue:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def entry(self, event_type: str) -> CatalogEntry | None:
        row = await self._conn.fetchrow(
            "SELECT event_type, publisher_roles, sensitivity FROM catalog WHERE event_type = $1", event_type
        )
        if row is None:
            return None
        return CatalogEntry(row["event_type"], tuple(row["publisher_roles"]), row["sensitivity"])


class PostgresSubscriptions:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def to(self, event_type: str, case_type: str) -> list[Subscribed]:
        rows = await self._conn.fetch(
            """
            SELECT p.partner_id, p.sector, p.delivery_topic,
                   s.purpose, s.legal_basis, s.fields, s.scope, s.slot
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

    async def put(self, subscription: SubscriptionRecord) -> None:
        s = subscription
        await self._conn.execute(
            """
            INSERT INTO subscriptions (partner_id, event_type, case_type, purpose, legal_basis,
                                       legal_basis_url, fields, retention_days, status, scope, slot)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (partner_id, event_type, coalesce(case_type, ''), coalesce(slot, '')) DO UPDATE SET
                purpose = $4, legal_basis = $5, legal_basis_url = $6, fields = $7, retention_days = $8,
                status = $9, scope = $10, updated_at = now()
            """,
            s.partner_id,
            s.event_type,
            s.case_type,
            s.purpose,
            s.legal_basis,
            s.legal_basis_url,
            list(s.fields),
            s.retention_days,
            s.status,
            s.scope,
            s.slot,
        )


class PostgresCaseParties:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, case_id: str, parties: Sequence[Party]) -> None:
        await self._conn.executemany(
            """
            INSERT INTO case_parties (case_id, slot, position, role, jurisdiction_level, bfs_number, canton,
                                      partner_id, unfilled_reason, filled_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $8::text IS NULL THEN NULL ELSE now() END)
            """,
            [
                (
                    case_id,
                    p.slot,
                    position,
                    p.role,
                    *_columns(p.jurisdiction),
                    p.partner_id,
                    p.unfilled_reason,
                )
                for position, p in enumerate(parties)
            ],
        )

    async def open_slots_needing(self, candidate: Candidate) -> list[OpenSlot]:
        if candidate.jurisdiction is None:
            return []
        level, bfs_number, canton = _columns(candidate.jurisdiction)
        rows = await self._conn.fetch(
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
        return [OpenSlot(row["case_id"], row["case_type"], row["trace_id"], party_of(row)) for row in rows]

    async def fill(self, case_id: str, slot: str, partner_id: str) -> None:
        await self._conn.execute(
            "UPDATE case_parties SET partner_id = $3, unfilled_reason = NULL, filled_at = now() "
            "WHERE case_id = $1 AND slot = $2 AND partner_id IS NULL",
            case_id,
            slot,
            partner_id,
        )

    async def set_unfilled_reason(self, case_id: str, slot: str, reason: str) -> None:
        await self._conn.execute(
            "UPDATE case_parties SET unfilled_reason = $3"
            " WHERE case_id = $1 AND slot = $2 AND partner_id IS NULL",
            case_id,
            slot,
            reason,
        )


class PostgresPartnerKeys:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def find(self, key_id: str) -> PartnerKey | None:
        row = await self._conn.fetchrow(
            "SELECT key_id, partner_id, public_key, valid_from, valid_until, revoked_at, algorithm"
            " FROM partner_keys WHERE key_id = $1",
            key_id,
        )
        if row is None:
            return None
        return PartnerKey(
            row["key_id"],
            row["partner_id"],
            row["public_key"],
            row["valid_from"],
            row["valid_until"],
            row["revoked_at"],
            row["algorithm"],
        )

    async def register(self, key: PartnerKey) -> None:
        await self._conn.execute(
            """
            INSERT INTO partner_keys (key_id, partner_id, algorithm, public_key, valid_from, valid_until)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (key_id) DO UPDATE SET partner_id = $2, algorithm = $3, public_key = $4,
                valid_from = $5, valid_until = $6, updated_at = now()
            """,
            key.key_id,
            key.partner_id,
            key.algorithm,
            key.public_key,
            key.valid_from,
            key.valid_until,
        )

    async def revoke(self, key_id: str, revoked_at: dt.datetime) -> None:
        await self._conn.execute(
            "UPDATE partner_keys SET revoked_at = coalesce(revoked_at, $2), updated_at = now()"
            " WHERE key_id = $1",
            key_id,
            revoked_at,
        )
