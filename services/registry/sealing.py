"""Cutting timeline texts left in clear to their summary, for an erasure.

Kept where ``hub person erase`` imports it from until the erasure reaches the registry
through its ``PersonErasure`` adapter alone (``adapters/postgres/erasure.py``); the
registry itself seals every text it writes (``Timeline.add``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

# Steps whose detail quoted a partner's words about the person, in clear.
_CLEAR_TEXT = "detail_sealed IS NULL AND (detail LIKE 'rejected: %' OR detail LIKE 'action required: %')"


async def strip_clear_timeline(conn: asyncpg.Connection, case_ids: list[str], *, schema: str) -> int:
    """Texts of these cases still in clear are cut to their summary. Needs no master key."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{schema}".timeline'):
        return 0
    status = await conn.execute(
        f"UPDATE \"{schema}\".timeline SET detail = split_part(detail, ': ', 1) "
        f"WHERE case_id = ANY($1::text[]) AND {_CLEAR_TEXT}",
        case_ids,
    )
    return int(status.split()[-1])
