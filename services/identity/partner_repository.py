"""SQL of the partner register (``partners``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from contracts.admin import RegisterPartner
from contracts.ech import Jurisdiction
from contracts.identity import PartnerStatus
from hub.runtime.outbox import Transaction

_COLUMNS = (
    "partner_id, name, sector, roles, sedex_id, local_person_id_category, status, announced_at, "
    "jurisdiction_level, bfs_number, canton"
)


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    sector: str
    roles: tuple[str, ...]
    sedex_id: str | None
    local_person_id_category: str | None
    status: PartnerStatus
    announced: bool
    # None: a row from before jurisdictions existed, or written by hand; it fills no slot.
    jurisdiction: Jurisdiction | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


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
        jurisdiction_of(row),
    )


def jurisdiction_of(row: Any) -> Jurisdiction | None:
    """The stored jurisdiction; None for a row without one (the table's check keeps the
    three columns consistent, so a level means a valid jurisdiction)."""
    if row["jurisdiction_level"] is None:
        return None
    return Jurisdiction(level=row["jurisdiction_level"], bfs_number=row["bfs_number"], canton=row["canton"])


async def get(tx: Transaction, partner_id: str, *, for_update: bool = False) -> Partner | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await tx.conn.fetchrow(f"SELECT {_COLUMNS} FROM partners WHERE partner_id = $1{lock}", partner_id)
    return None if row is None else _partner(row)


async def get_many(tx: Transaction, partner_ids: Collection[str]) -> dict[str, Partner]:
    rows = await tx.conn.fetch(
        f"SELECT {_COLUMNS} FROM partners WHERE partner_id = ANY($1::text[])", list(partner_ids)
    )
    return {row["partner_id"]: _partner(row) for row in rows}


async def all_partners(tx: Transaction) -> list[dict[str, Any]]:
    rows = await tx.conn.fetch(
        "SELECT partner_id, instance, member_class, member_code, subsystem, name, sector, roles, "
        "jurisdiction_level, bfs_number, canton, "
        "sedex_id, local_person_id_category, status, status_reason, registered_at, updated_at, "
        "announced_at FROM partners ORDER BY partner_id"
    )
    return [_listed(row) for row in rows]


def _listed(row: Any) -> dict[str, Any]:
    """A row for ``hub partner list``: the jurisdiction as one object, as the contracts have it."""
    listed = {k: v for k, v in dict(row).items() if k not in ("jurisdiction_level", "bfs_number", "canton")}
    jurisdiction = jurisdiction_of(row)
    listed["jurisdiction"] = None if jurisdiction is None else jurisdiction.model_dump(exclude_none=True)
    return listed


async def upsert(tx: Transaction, command: RegisterPartner) -> Partner:
    """Insert a new (active) partner or update its description; its status stays as it was."""
    row = await tx.conn.fetchrow(
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


async def set_status(
    tx: Transaction, partner_id: str, status: PartnerStatus, reason: str | None
) -> Partner | None:
    row = await tx.conn.fetchrow(
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


async def claim_unannounced(tx: Transaction, limit: int) -> list[Partner]:
    # SKIP LOCKED: two identity instances never announce the same partner twice.
    rows = await tx.conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM partners WHERE announced_at IS NULL
        ORDER BY partner_id LIMIT $1 FOR UPDATE SKIP LOCKED
        """,
        limit,
    )
    return [_partner(row) for row in rows]


async def mark_announced(tx: Transaction, partner_id: str) -> None:
    await tx.conn.execute("UPDATE partners SET announced_at = now() WHERE partner_id = $1", partner_id)
