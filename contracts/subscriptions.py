"""Managing who receives what: subscription commands for the registry (on ``hub.admin``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from contracts.base import Contract
from contracts.case import SlotName
from contracts.ech import ParticipantIdStr

__all__ = ["SetSubscription", "SubscriptionScope"]

SubscriptionScope = Literal["party", "all-cases"]
"""``party``: only cases the partner is a party to; ``all-cases``: every case of the type."""
FieldPath = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")]


class SetSubscription(Contract):
    """Create or change partner P's subscription to event type T.

    Only ``approved`` subscriptions route; ``fields`` are the data categories (dotted
    paths into the event's data) the partner may see, under the stated legal basis.
    By default (``scope="party"``) a partner receives a case's events only if it fills
    one of the case's party slots; ``all-cases`` (a statistics office, operations) spans
    every case of the type and must rest on a legal basis that says so.

    ``slot`` narrows a ``party`` subscription to the cases in which the partner fills that
    party slot of ``case_type`` (a municipality records a departure under another purpose
    and legal basis than an arrival). Without a slot it serves whichever slots the partner
    fills that no subscription of its own names. A slot means something only within its
    case type, and an ``all-cases`` subscription does not depend on being a party at all:
    both combinations are refused.
    """

    event_type: ClassVar[str] = "ch.lu.hub.admin.set-subscription.v1"

    partner_id: ParticipantIdStr
    subscribed_event_type: str = Field(min_length=1, max_length=200)
    case_type: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,62}$")
    purpose: str = Field(min_length=1, max_length=500)
    legal_basis: str = Field(min_length=1, max_length=500)
    legal_basis_url: str | None = Field(default=None, max_length=500)
    fields: tuple[FieldPath, ...] = ()
    retention_days: int = Field(ge=1, le=36500)
    status: Literal["requested", "approved", "revoked"] = "requested"
    scope: SubscriptionScope = "party"
    slot: SlotName | None = None

    @model_validator(mode="after")
    def _slot_within_a_party_scope(self) -> Self:
        if self.slot is None:
            return self
        if self.scope == "all-cases":
            raise ValueError("an all-cases subscription spans every case: it cannot name a party slot")
        if self.case_type is None:
            raise ValueError(f"slot {self.slot} needs the case type that defines it")
        return self
