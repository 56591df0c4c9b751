"""notifications' part of ``hub person erase``, in the erasing command's transaction.

The command runs on identity's connection, so every table is named with its schema, and a
table notifications has not created yet (it never ran against this database) has nothing
to erase. The person's notices and inbox messages are sealed under the keys the vault has
just destroyed: they are counted as unreadable. Their channel preference and opt-out are
keyed by citizen id in clear, so no key reaches them: they are deleted.
"""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from services.erasure import StoreReport
from services.notifications.adapters.postgres.citizens import forget_preferences
from services.notifications.domain import UNREADABLE_AFTER_ERASURE

SEALED_BY_CASE = ("notifications", "inbox_messages")


class NotificationsErasure:
    def __init__(self, conn: asyncpg.Connection, *, schema: str = "notifications") -> None:
        self._conn, self._schema = conn, schema

    async def _exists(self, table: str) -> bool:
        return bool(
            await self._conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{self._schema}".{table}')
        )

    async def citizen_ids_of_cases(self, case_ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        for table in SEALED_BY_CASE:
            if not case_ids or not await self._exists(table):
                continue
            rows = await self._conn.fetch(
                f'SELECT DISTINCT citizen_id FROM "{self._schema}".{table} '
                "WHERE case_id = ANY($1::text[]) AND citizen_id IS NOT NULL",
                list(case_ids),
            )
            found.update(row["citizen_id"] for row in rows)
        return found

    async def erase(self, *, case_ids: Collection[str], citizen_ids: Collection[str]) -> list[StoreReport]:
        reports = []
        for table in SEALED_BY_CASE:
            if not await self._exists(table):
                continue
            count = await self._conn.fetchval(
                f'SELECT count(*) FROM "{self._schema}".{table} '
                "WHERE case_id = ANY($1::text[]) AND sealed IS NOT NULL",
                list(case_ids),
            )
            reports.append(StoreReport(f"{self._schema}.{table}", UNREADABLE_AFTER_ERASURE, count))
        deleted = await forget_preferences(self._conn, citizen_ids, schema=self._schema)
        reports.append(StoreReport(f"{self._schema}.citizen_preferences", "deleted", deleted))
        return reports
