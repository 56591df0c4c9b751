"""The audit chain's head, published so that it is kept outside the database.

The registry seals every routing decision, disclosure and refusal into a hash chain in
PostgreSQL. Whoever can rewrite that database could cut the chain's end and move its head
back consistently; a head the hub published (signed, on a topic operations keep) shows
that the chain once reached further. ``hub audit verify`` reads the latest one.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from contracts.base import Contract

__all__ = ["AuditHeadAnchored"]


class AuditHeadAnchored(Contract):
    """Where the registry's audit chain ended when this was published."""

    event_type: ClassVar[str] = "ch.lu.hub.audit.head-anchored.v1"

    seq: int = Field(ge=0, description="the number of the chain's last entry")
    entry_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="that entry's seal (HMAC-SHA-256, hex), as audit_head holds it"
    )
    anchored_at: AwareDatetime
