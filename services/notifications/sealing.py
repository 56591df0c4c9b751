"""Notifications and inbox messages stored before migration 0003 get sealed at start.

Each is sealed under the key of its case (the person's key, if the registry has already
bound the case to it); a notice with a citizen id also binds that citizen reference, so
the key joins the person's ring once identity binds the same reference.
"""

from __future__ import annotations

import asyncpg

from hub.vault import store as vault_store
from hub.vault.crypto import Erased, case_ref, citizen_ref
from hub.vault.master import installed
from services.notifications.citizens import inbox_context
from services.notifications.repository import sealed_context

BATCH = 100


async def seal_batch(conn: asyncpg.Connection) -> int:
    return await _seal_notifications(conn) + await _seal_inbox(conn)


async def _key(conn: asyncpg.Connection, case_id: str, citizen_id: str | None) -> vault_store.Key:
    key = await vault_store.key_for(conn, installed(), case_ref(case_id))
    if citizen_id and not isinstance(key, Erased):
        await vault_store.bind(conn, citizen_ref(citizen_id), key.key_id)
    return key


async def _seal_notifications(conn: asyncpg.Connection) -> int:
    rows = await conn.fetch(
        "SELECT notification_id, case_id, citizen_id, recipient, subject, body FROM notifications "
        "WHERE sealed IS NULL ORDER BY notification_id LIMIT $1 FOR UPDATE SKIP LOCKED",
        BATCH,
    )
    for row in rows:
        value = {"recipient": row["recipient"], "subject": row["subject"], "body": row["body"]}
        key = await _key(conn, row["case_id"], row["citizen_id"])
        await conn.execute(
            "UPDATE notifications SET recipient = '', subject = '', body = '', sealed = $2 "
            "WHERE notification_id = $1",
            row["notification_id"],
            vault_store.seal_json(key, value, sealed_context(row["notification_id"])),
        )
    return len(rows)


async def _seal_inbox(conn: asyncpg.Connection) -> int:
    rows = await conn.fetch(
        "SELECT notification_id, case_id, citizen_id, subject, body FROM inbox_messages "
        "WHERE sealed IS NULL ORDER BY notification_id LIMIT $1 FOR UPDATE SKIP LOCKED",
        BATCH,
    )
    for row in rows:
        key = await _key(conn, row["case_id"], row["citizen_id"])
        await conn.execute(
            "UPDATE inbox_messages SET subject = '', body = '', sealed = $2 WHERE notification_id = $1",
            row["notification_id"],
            vault_store.seal_json(
                key, {"subject": row["subject"], "body": row["body"]}, inbox_context(row["notification_id"])
            ),
        )
    return len(rows)
