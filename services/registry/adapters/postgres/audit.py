"""The audit chain in PostgreSQL: ``hub.audit.store`` appends, under the key passed in."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import asyncpg

from hub.audit import store as audit_store
from hub.audit.chain import AuditEntry, AuditKey
from hub.runtime.messages import Emitter


class PostgresAuditLog:
    def __init__(self, conn: asyncpg.Connection, key: AuditKey, emitter: Emitter | None = None) -> None:
        self._conn, self._key, self._emitter = conn, key, emitter

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        # The chain's head stays locked from the append to the commit, and every writer of
        # the registry needs it: appended through the emitter's before_commit, a batch seals
        # its entries after all its records' own locks are taken, so two batches never
        # wait for each other's head and case locks crosswise.
        if self._emitter is None:
            await audit_store.append(self._conn, self._key, entries)
        else:
            await self._emitter.before_commit(
                functools.partial(audit_store.append, self._conn, self._key, list(entries))
            )
