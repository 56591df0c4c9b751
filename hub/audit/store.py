"""The audit log's tables: appends under the chain head's lock, and reading the chain back.

SQL is unqualified, like every service's: the connection's search_path names the schema
(the registry's, where ``audit_log`` and ``audit_head`` live; migrations 0007, 0010, 0011).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import asyncpg

from hub.audit.chain import AuditEntry, AuditKey, ChainVerifier, Decision, SealedEntry, Verdict, seal_next
from hub.errors import ConfigurationError

_COLUMNS = (
    "seq, recorded_at, decision, case_id, case_type, event_id, event_type, trace_id, partner_id, sector, "
    "delivery_event_id, fields, person_pseudonym, citizen_id, legal_basis, purpose, reason, key_id, "
    "prev_hash, entry_hash, reason_class, sender_verified, basis"
)
_INSERT = f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join(f'${i}' for i in range(1, 24))})"


async def append(conn: asyncpg.Connection, key: AuditKey, entries: Sequence[AuditEntry]) -> list[SealedEntry]:
    """Seal ``entries`` onto the chain, in the caller's transaction.

    The head row stays locked until that transaction ends, so a concurrent writer waits
    and then continues from the committed head: the chain never forks, and an append
    that is rolled back leaves no gap.
    """
    if not entries:
        return []
    if not conn.is_in_transaction():
        raise RuntimeError("audit entries are appended inside the transaction they record")
    head = await conn.fetchrow("SELECT seq, entry_hash FROM audit_head FOR UPDATE")
    if head is None:
        raise ConfigurationError("the audit chain has no head row (migration 0007 missing?)")
    seq, prev = int(head["seq"]), str(head["entry_hash"])
    # Taken after the lock: times grow along the chain.
    recorded_at = dt.datetime.now(dt.UTC)
    sealed: list[SealedEntry] = []
    for entry in entries:
        seq += 1
        sealed.append(seal_next(key, entry, seq=seq, prev_hash=prev, recorded_at=recorded_at))
        prev = sealed[-1].entry_hash
    await conn.executemany(_INSERT, [_row(s) for s in sealed])
    await conn.execute("UPDATE audit_head SET seq = $1, entry_hash = $2", seq, prev)
    return sealed


def _row(s: SealedEntry) -> tuple[Any, ...]:
    e = s.entry
    return (
        s.seq,
        s.recorded_at,
        e.decision.value,
        e.case_id,
        e.case_type,
        e.event_id,
        e.event_type,
        e.trace_id,
        e.partner_id,
        e.sector,
        e.delivery_event_id,
        list(e.fields),
        e.person_pseudonym,
        e.citizen_id,
        e.legal_basis,
        e.purpose,
        e.reason,
        s.key_id,
        s.prev_hash,
        s.entry_hash,
        e.reason_class,
        e.sender_verified,
        e.basis,
    )


def sealed_entry(row: Mapping[str, Any]) -> SealedEntry:
    entry = AuditEntry(
        decision=Decision(row["decision"]),
        case_id=row["case_id"],
        case_type=row["case_type"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        trace_id=row["trace_id"],
        partner_id=row["partner_id"],
        sector=row["sector"],
        delivery_event_id=row["delivery_event_id"],
        fields=tuple(row["fields"]),
        person_pseudonym=row["person_pseudonym"],
        citizen_id=row["citizen_id"],
        legal_basis=row["legal_basis"],
        purpose=row["purpose"],
        reason=row["reason"],
        reason_class=row["reason_class"],
        sender_verified=row["sender_verified"],
        basis=row["basis"],
    )
    return SealedEntry(
        row["seq"], row["recorded_at"], entry, row["key_id"], row["prev_hash"], row["entry_hash"]
    )


async def _chain(conn: asyncpg.Connection, prefetch: int) -> AsyncIterator[SealedEntry]:
    async for row in conn.cursor(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq", prefetch=prefetch):
        yield sealed_entry(row)


async def verify(
    conn: asyncpg.Connection, key: AuditKey, *, anchors: Mapping[int, str] | None = None, prefetch: int = 1000
) -> Verdict:
    """Walk the whole chain from one snapshot (appends meanwhile are not half-seen)."""
    verifier = ChainVerifier(key, anchors)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        head = await conn.fetchrow("SELECT seq, entry_hash FROM audit_head")
        head_seq, head_hash = (0, "") if head is None else (int(head["seq"]), str(head["entry_hash"]))
        async for sealed in _chain(conn, prefetch):
            broken = verifier.feed(sealed)
            if broken is not None:
                return Verdict(verifier.count, head_seq, head_hash, broken)
        return Verdict(verifier.count, head_seq, head_hash, verifier.finish(head_seq, head_hash))


async def disclosures(
    conn: asyncpg.Connection, *, citizen_id: str | None = None, case_id: str | None = None
) -> list[SealedEntry]:
    """Every delivery of a citizen's (or a case's) data, oldest first.

    A citizen's entries are found by their citizen id and also through the cases that
    carry it (``cases.citizen_id``), should an entry predate the id being known.
    """
    if (citizen_id is None) == (case_id is None):
        raise ValueError("name either a citizen id or a case id")
    if citizen_id is not None:
        where = "citizen_id = $1 OR case_id IN (SELECT case_id FROM cases WHERE citizen_id = $1)"
        value = citizen_id
    else:
        where, value = "case_id = $1", str(case_id)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM audit_log WHERE decision = 'delivered' AND ({where}) ORDER BY seq", value
    )
    return [sealed_entry(row) for row in rows]


async def refusals(
    conn: asyncpg.Connection,
    *,
    partner_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
) -> list[SealedEntry]:
    """Refused partner events, newest first: who claimed to send what, and why it was refused."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM audit_log WHERE decision = 'refused'"
        " AND ($1::text IS NULL OR partner_id = $1)"
        " AND ($2::timestamptz IS NULL OR recorded_at >= $2)"
        " AND ($3::timestamptz IS NULL OR recorded_at < $3)"
        " ORDER BY seq DESC LIMIT $4",
        partner_id,
        since,
        until,
        limit,
    )
    return [sealed_entry(row) for row in rows]
