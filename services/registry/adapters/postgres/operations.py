"""The registry's SQL outside handlers: what its commands list, its metrics, its topics at start.

Commands run outside the service, on a connection of their own to the hub's database
(``hub.cli.database``), so their tables are named with the registry's schema; the
service's own reads (metrics, topics) run on its pool, whose search path is the schema.
"""

from __future__ import annotations

from typing import Any

import asyncpg

SUBSCRIPTIONS_SQL = (
    "SELECT partner_id, event_type, case_type, slot, status, scope, purpose, legal_basis, fields, "
    "retention_days FROM registry.subscriptions ORDER BY partner_id, event_type, case_type, slot NULLS FIRST"
)
CATALOGUE_SQL = (
    "SELECT event_type, publisher_roles, sensitivity, description FROM registry.catalog ORDER BY event_type"
)
ACTIVE_PARTNERS_SQL = (
    "SELECT partner_id, delivery_topic FROM registry.partners WHERE status = 'active' ORDER BY 1"
)


async def _rows(conn: asyncpg.Connection, sql: str) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(sql)]


async def subscriptions(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Every subscription, for ``hub subscription list``."""
    return await _rows(conn, SUBSCRIPTIONS_SQL)


async def catalogue(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The event catalogue, for ``hub catalog list``."""
    return await _rows(conn, CATALOGUE_SQL)


async def active_partners(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Active partners and their delivery topics, for ``hub acls``."""
    return await _rows(conn, ACTIVE_PARTNERS_SQL)


async def partner_topic_rows(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    """Every known partner's id and delivery topic."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT partner_id, delivery_topic FROM partners")
    return [(row["partner_id"], row["delivery_topic"]) for row in rows]


async def metrics(conn: asyncpg.Connection) -> list[str]:
    """Open cases' party slots that no active partner fills (nobody did when the case opened, or
    its partner is suspended since): each keeps its case from completing."""
    unfilled = await conn.fetchval(
        "SELECT count(*) FROM case_parties p JOIN cases c USING (case_id)"
        " LEFT JOIN partners pa ON pa.partner_id = p.partner_id"
        " WHERE (p.partner_id IS NULL OR pa.status IS DISTINCT FROM 'active')"
        " AND c.status IN ('opened', 'in-progress', 'escalated')"
    )
    return [
        "# HELP hub_case_unfilled_slots Party slots of open cases that no active partner fills.",
        "# TYPE hub_case_unfilled_slots gauge",
        f'hub_case_unfilled_slots{{service="registry"}} {unfilled}',
    ]
