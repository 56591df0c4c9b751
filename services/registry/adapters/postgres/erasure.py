"""The registry's part of ``hub person erase``, in PostgreSQL.

The command runs on another service's connection (identity's search path), so every table
is named with the registry's schema; a database where the registry never ran has no such
tables, and nothing of the registry's to report.
"""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from services.erasure import StoreReport

SCHEMA = "registry"
UNREADABLE = "unreadable (sealed under a destroyed key)"
# Rows sealed under the person's keys, by the case they belong to: the destroyed keys made
# them unreadable, and the count says how many.
SEALED_BY_CASE = (
    ("cases", "details_sealed"),
    ("pending_deliveries", "data_sealed"),
    ("timeline", "detail_sealed"),
)


class RegistryErasure:
    """``services.erasure.PersonErasure`` for the registry's own tables."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        if not case_ids or not await self._exists("cases"):
            return set()
        rows = await self._conn.fetch(
            f"SELECT DISTINCT citizen_id FROM {SCHEMA}.cases "
            "WHERE case_id = ANY($1::text[]) AND citizen_id IS NOT NULL",
            list(case_ids),
        )
        return {row["citizen_id"] for row in rows}

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        """Nothing to delete: the vault's destroyed keys did it. Reports what they made unreadable."""
        reports = []
        for table, column in SEALED_BY_CASE:
            if not await self._exists(table):
                continue
            count = await self._conn.fetchval(
                f"SELECT count(*) FROM {SCHEMA}.{table} "
                f"WHERE case_id = ANY($1::text[]) AND {column} IS NOT NULL",
                list(case_ids),
            )
            reports.append(StoreReport(f"{SCHEMA}.{table}", UNREADABLE, count))
        return reports

    async def _exists(self, table: str) -> bool:
        return bool(await self._conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{SCHEMA}.{table}"))
