"""What the notifications service needs of its stores, as handlers and workers see them.

No connection appears here: the PostgreSQL adapter binds these to a transaction
(``adapters/postgres``), the in-memory one to dicts (``adapters/memory``), and one
contract suite runs against both (``tests/contract/notifications``). Recipient, subject
and body are personal data: the adapters seal them under the data key of the case's
person, so reading a notice of an erased person yields ``unreadable`` instead of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from contracts import Channel, DeliveryStatus
from hub.runtime.messages import Emitter
from services.notifications.domain import (
    InboxMessage,
    NewInboxMessage,
    NewNotification,
    Notice,
    Outcome,
    Pending,
    Preference,
    WebhookEndpoint,
)

__all__ = [
    "Inbox",
    "Notifications",
    "Preferences",
    "Repositories",
    "UnitOfWork",
    "UnitsOfWork",
    "Webhooks",
]


class Notifications(Protocol):
    """Notices and their status lifecycle: created -> sending -> delivered | *-failure."""

    async def add(self, new: NewNotification) -> bool:
        """Queue as 'created'; False if this notification id exists (a redelivered request)."""
        ...

    async def add_all(self, news: Sequence[NewNotification]) -> set[str]:
        """Queue each as ``add`` does, written together; the ids queued now (an id that
        exists already is left as it is)."""
        ...

    async def claim_due(self, limit: int) -> list[Pending]:
        """Move due notices ('created', or 'temporary-failure' past their retry time) to
        'sending' and return them in the order they were requested, oldest request first.

        A notice is due only once every earlier notice of its case and channel
        (``domain.sending_order``) is finished or due with it: none of them is 'sending'
        or waiting for its retry, so a case's notices cannot overtake one another, neither
        within a claim nor across claims. Dispatchers share: a notice one of them claimed
        is not handed to another, and claims do not interleave."""
        ...

    async def release(self, notification_ids: Sequence[str], *, reason: str) -> None:
        """Claimed notices given back unsent (an earlier one of their case and channel is
        to be retried first): due as before their claim, the attempt not counted, and
        ``reason`` in their history. Notices no longer 'sending' are left as they are."""
        ...

    async def requeue_stale_sending(self, older_than_s: float) -> int:
        """Notices in 'sending' for longer than ``older_than_s`` (their dispatcher died
        mid-send) become due again; returns how many."""
        ...

    async def finish(
        self,
        notification_id: str,
        status: DeliveryStatus,
        *,
        detail: str | None,
        retry_in_s: float | None = None,
    ) -> None:
        """The outcome of an attempt, with its history entry; due again in ``retry_in_s``."""
        ...

    async def finish_all(self, outcomes: Sequence[Outcome]) -> None:
        """Each outcome as ``finish`` records it, written together."""
        ...

    async def history(self, notification_id: str) -> list[tuple[str, str | None]]:
        """(status, detail) in order: a notice's life."""
        ...

    async def of_case(self, case_id: str) -> list[Notice]:
        """The case's notices, ordered by notification id."""
        ...


class Preferences(Protocol):
    """What a citizen chose: a channel and whether non-mandatory notices reach them."""

    async def preference_of(self, citizen_id: str) -> Preference | None: ...

    async def prefer_channel(self, citizen_id: str, channel: Channel) -> None: ...

    async def set_opted_out(self, citizen_id: str, opted_out: bool) -> None: ...


class Inbox(Protocol):
    """The in-app inbox: what the inbox channel delivered."""

    async def store(self, message: NewInboxMessage) -> None:
        """Keep the message once; storing the same notification id again changes nothing
        (a retry after a crash between storing and recording the outcome)."""
        ...

    async def store_all(self, messages: Sequence[NewInboxMessage]) -> None:
        """Each message as ``store`` keeps it, written together."""
        ...

    async def of(self, citizen_id: str) -> list[InboxMessage]:
        """Newest first, as an inbox shows them."""
        ...


class Webhooks(Protocol):
    """Partners without Kafka: their delivery topic is POSTed to their URL, signed with their secret."""

    async def put(self, partner_id: str, url: str, secret: str) -> None:
        """Add, or replace the URL and secret of, a partner's webhook (``check_webhook`` first)."""
        ...

    async def all(self) -> list[WebhookEndpoint]: ...

    async def for_topic(self, topic: str) -> WebhookEndpoint | None: ...

    async def of(self, partner_id: str) -> WebhookEndpoint | None: ...

    async def topics(self) -> set[str]: ...


class Repositories(Protocol):
    """Every store of the service, in one transaction (what ``hub`` commands work on)."""

    @property
    def notifications(self) -> Notifications: ...

    @property
    def preferences(self) -> Preferences: ...

    @property
    def inbox(self) -> Inbox: ...

    @property
    def webhooks(self) -> Webhooks: ...


class UnitOfWork(Repositories, Protocol):
    """What a handler gets: the stores, and the emitter whose events leave only if the
    unit of work commits."""

    @property
    def emitter(self) -> Emitter: ...


class UnitsOfWork(Protocol):
    """Units of work for the workers, which run outside a consumer's transaction."""

    def begin(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work that commits when the block ends and rolls back if it raises.
        The store being unreachable raises ``hub.errors.DatabaseUnavailable``."""
        ...

    def on_due(self, wake: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """While the block runs, ``wake`` is called when new notices are queued (a hint
        only: the dispatcher also polls)."""
        ...
