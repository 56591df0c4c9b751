"""The audit chain in PostgreSQL: ``hub.audit.store`` appends, under the key passed in."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from hub.audit import store as audit_store
from hub.audit.chain import AuditEntry, AuditKey


class PostgresAuditLog:
    def __init__(self, conn: asyncpg.Connection, key: AuditKey) -> None:
        self._conn, self._key = conn, key

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        # The chain head stays locked from here to the commit: callers append last.
        await audit_store.append(self._conn, self._key, entries)
