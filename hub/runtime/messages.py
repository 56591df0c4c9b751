"""What handlers see: an incoming event and the transaction their effect runs in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from contracts import Action, Contract, Envelope
from contracts.catalog import serialize_data
from hub.runtime.outbox import write_event

C = TypeVar("C", bound=Contract)


@dataclass(frozen=True)
class Incoming(Generic[C]):
    """One validated event as a handler receives it."""

    envelope: Envelope
    data: C
    topic: str
    partition: int
    offset: int
    trace_id: str
    # The record value as it arrived: a signature covers these bytes, not a re-serialisation.
    value: bytes = b""
    # The Kafka key as it arrived (the case id, for every producer of the hub).
    key: bytes | None = None
    # The record's headers as they arrived: a signature covers their bytes (hub.security.signed_form),
    # and some are no CloudEvents attribute (an operator's redrive attestation).
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def case_id(self) -> str:
        return self.envelope.businessprocessid


class Transaction:
    """The handler's unit of work: its state change and the events it emits commit together.

    ``emit`` writes to the outbox; nothing reaches Kafka unless the transaction commits.
    """

    def __init__(self, conn: asyncpg.Connection, *, source: str) -> None:
        self.conn = conn
        self.source = source
        self.emitted: list[Envelope] = []

    async def emit(
        self,
        data: Contract,
        *,
        topic: str,
        business_process_id: str,
        key: str | None = None,
        subject: str | None = None,
        reference_id: str | None = None,
        action: Action = Action.NEW,
        test_delivery: bool = False,
    ) -> Envelope:
        envelope = Envelope.new(
            data,
            source=self.source,
            business_process_id=business_process_id,
            subject=subject,
            reference_id=reference_id,
            action=action,
            test_delivery=test_delivery,
        )
        await write_event(
            self.conn,
            topic=topic,
            key=key or business_process_id,
            envelope=envelope,
            payload=serialize_data(data),
        )
        self.emitted.append(envelope)
        return envelope


AnyIncoming = Incoming[Any]
