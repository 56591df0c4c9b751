"""The partner register (``partners``) and partners' signing keys (``partner_keys``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import asyncpg

from contracts.admin import RegisterPartner
from contracts.ech import Jurisdiction
from contracts.identity import PartnerStatus
from services.identity.domain import Partner, PartnerKey
from services.identity.ports import ListingRow

_COLUMNS = (
    "partner_id, name, sector, roles, sedex_id, local_person_id_category, status, announced_at, "
    "jurisdiction_level, bfs_number, canton"
)
_KEY_COLUMNS = (
    "key_id, partner_id, algorithm, public_key, valid_from, valid_until, revoked_at, revocation_reason"
)


def _partner(row: Any) -> Partner:
    return Partner(
        row["partner_id"],
        row["name"],
        row["sector"],
        tuple(row["roles"]),
        row["sedex_id"],
        row["local_person_id_category"],
        row["status"],
        row["announced_at"] is not None,
        _jurisdiction(row),
    )


def _jurisdiction(row: Any) -> Jurisdiction | None:
    """The stored jurisdiction; None for a row without one (the table's check keeps the
    three columns consistent, so a level means a valid jurisdiction)."""
    if row["jurisdiction_level"] is None:
        return None
    return Jurisdiction(level=row["jurisdiction_level"], bfs_number=row["bfs_number"], canton=row["canton"])


def _listed(row: Any) -> ListingRow:
    """A row for ``hub partner list``: the jurisdiction as one object, as the contracts have it."""
    listed = {k: v for k, v in dict(row).items() if k not in ("jurisdiction_level", "bfs_number", "canton")}
    jurisdiction = _jurisdiction(row)
    listed["jurisdiction"] = None if jurisdiction is None else jurisdiction.model_dump(exclude_none=True)
    return listed


def _key(row: Any) -> PartnerKey:
    return PartnerKey(
        row["key_id"],
        row["partner_id"],
        row["algorithm"],
        row["public_key"],
        row["valid_from"],
        row["valid_until"],
        row["revoked_at"],
        row["revocation_reason"],
    )


class PostgresPartners:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, partner_id: str, *, for_update: bool = False) -> Partner | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM partners WHERE partner_id = $1{lock}", partner_id
        )
        return None if row is None else _partner(row)

    async def get_many(self, partner_ids: Collection[str]) -> dict[str, Partner]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM partners WHERE partner_id = ANY($1::text[])", list(partner_ids)
        )
        return {row["partner_id"]: _partner(row) for row in rows}

    async def upsert(self, command: RegisterPartner) -> Partner:
        row = await self._conn.fetchrow(
            f"""
            INSERT INTO partners (partner_id, name, sector, roles, sedex_id, local_person_id_category,
                                  jurisdiction_level, bfs_number, canton)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            ON CONFLICT (partner_id) DO UPDATE SET name = $2, sector = $3, roles = $4, sedex_id = $5,
                local_person_id_category = $6, jurisdiction_level = $7, bfs_number = $8, canton = $9,
                updated_at = now()
            RETURNING {_COLUMNS}
            """,
            command.partner_id,
            command.name,
            command.sector.value,
            list(command.roles),
            command.sedex_id,
            command.local_person_id_category,
            command.jurisdiction.level,
            command.jurisdiction.bfs_number,
            command.jurisdiction.canton,
        )
        return _partner(row)

    async def set_status(self, partner_id: str, status: PartnerStatus, reason: str | None) -> Partner | None:
        row = await self._conn.fetchrow(
            f"""
            UPDATE partners SET status = $2, status_reason = $3, updated_at = now()
            WHERE partner_id = $1
            RETURNING {_COLUMNS}
            """,
            partner_id,
            status,
            reason,
        )
        return None if row is None else _partner(row)

    async def claim_unannounced(self, limit: int) -> list[Partner]:
        # SKIP LOCKED: two identity instances never announce the same partner twice.
        rows = await self._conn.fetch(
            f"""
            SELECT {_COLUMNS} FROM partners WHERE announced_at IS NULL
            ORDER BY partner_id LIMIT $1 FOR UPDATE SKIP LOCKED
            """,
            limit,
        )
        return [_partner(row) for row in rows]

    async def mark_announced(self, partner_id: str) -> None:
        await self._conn.execute("UPDATE partners SET announced_at = now() WHERE partner_id = $1", partner_id)

    async def listing(self) -> list[ListingRow]:
        rows = await self._conn.fetch(
            "SELECT partner_id, instance, member_class, member_code, subsystem, name, sector, roles, "
            "jurisdiction_level, bfs_number, canton, "
            "sedex_id, local_person_id_category, status, status_reason, registered_at, updated_at, "
            "announced_at FROM partners ORDER BY partner_id"
        )
        return [_listed(row) for row in rows]


class PostgresPartnerKeys:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def get(self, key_id: str, *, for_update: bool = False) -> PartnerKey | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM partner_keys WHERE key_id = $1{lock}", key_id
        )
        return None if row is None else _key(row)

    async def key_id_of(self, public_key: str) -> str | None:
        value = await self._conn.fetchval("SELECT key_id FROM partner_keys WHERE public_key = $1", public_key)
        return None if value is None else str(value)

    async def upsert(
        self,
        *,
        key_id: str,
        partner_id: str,
        algorithm: str,
        public_key: str,
        valid_from: dt.datetime,
        valid_until: dt.datetime | None,
    ) -> PartnerKey:
        row = await self._conn.fetchrow(
            f"""
            INSERT INTO partner_keys (key_id, partner_id, algorithm, public_key, valid_from, valid_until)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (key_id) DO UPDATE SET valid_from = $5, valid_until = $6, updated_at = now()
            RETURNING {_KEY_COLUMNS}
            """,
            key_id,
            partner_id,
            algorithm,
            public_key,
            valid_from,
            valid_until,
        )
        return _key(row)

    async def revoke(self, key_id: str, reason: str | None) -> PartnerKey:
        row = await self._conn.fetchrow(
            f"""
            UPDATE partner_keys SET revoked_at = now(), revocation_reason = $2, updated_at = now()
            WHERE key_id = $1
            RETURNING {_KEY_COLUMNS}
            """,
            key_id,
            reason,
        )
        return _key(row)

    async def listing(self, partner_id: str | None = None) -> list[ListingRow]:
        rows = await self._conn.fetch(
            f"SELECT {_KEY_COLUMNS}, registered_at, updated_at FROM partner_keys"
            " WHERE $1::text IS NULL OR partner_id = $1 ORDER BY partner_id, valid_from, key_id",
            partner_id,
        )
        return [dict(row) for row in rows]
