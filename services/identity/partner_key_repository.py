"""SQL of partners' signing keys (``partner_keys``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hub.runtime.outbox import Transaction

_COLUMNS = "key_id, partner_id, algorithm, public_key, valid_from, valid_until, revoked_at, revocation_reason"


@dataclass(frozen=True)
class PartnerKey:
    key_id: str
    partner_id: str
    algorithm: str
    public_key: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None
    revocation_reason: str | None


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


async def get(tx: Transaction, key_id: str, *, for_update: bool = False) -> PartnerKey | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await tx.conn.fetchrow(f"SELECT {_COLUMNS} FROM partner_keys WHERE key_id = $1{lock}", key_id)
    return None if row is None else _key(row)


async def key_id_of(tx: Transaction, public_key: str) -> str | None:
    value = await tx.conn.fetchval("SELECT key_id FROM partner_keys WHERE public_key = $1", public_key)
    return None if value is None else str(value)


async def upsert(
    tx: Transaction,
    *,
    key_id: str,
    partner_id: str,
    algorithm: str,
    public_key: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime | None,
) -> PartnerKey:
    """Insert a key, or change the window of the same key; the caller checked it is the same."""
    row = await tx.conn.fetchrow(
        f"""
        INSERT INTO partner_keys (key_id, partner_id, algorithm, public_key, valid_from, valid_until)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (key_id) DO UPDATE SET valid_from = $5, valid_until = $6, updated_at = now()
        RETURNING {_COLUMNS}
        """,
        key_id,
        partner_id,
        algorithm,
        public_key,
        valid_from,
        valid_until,
    )
    return _key(row)


async def revoke(tx: Transaction, key_id: str, reason: str | None) -> PartnerKey:
    row = await tx.conn.fetchrow(
        f"""
        UPDATE partner_keys SET revoked_at = now(), revocation_reason = $2, updated_at = now()
        WHERE key_id = $1
        RETURNING {_COLUMNS}
        """,
        key_id,
        reason,
    )
    return _key(row)


async def all_keys(tx: Transaction, partner_id: str | None = None) -> list[dict[str, Any]]:
    rows = await tx.conn.fetch(
        f"SELECT {_COLUMNS}, registered_at, updated_at FROM partner_keys"
        " WHERE $1::text IS NULL OR partner_id = $1 ORDER BY partner_id, valid_from, key_id",
        partner_id,
    )
    return [dict(row) for row in rows]
