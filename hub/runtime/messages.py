"""What handlers see: an incoming event, and the emitter their events go out through.

Nothing here does I/O. A service's unit of work carries an ``Emitter``; the runtime's
emitter writes outbox rows in the handler's transaction (``hub.runtime.outbox``), and a
test's ``RecordingEmitter`` keeps them in a list, so a handler runs the same either way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from contracts import Action, Contract, Envelope

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


AnyIncoming = Incoming[Any]


@dataclass(frozen=True)
class Emitted:
    """An event a handler emitted: where it goes, under which key, and what it carries."""

    topic: str
    key: str
    envelope: Envelope
    data: Contract


class Emitter(ABC):
    """Where a handler's events go. They leave only if the unit of work they belong to
    commits: the runtime's emitter writes outbox rows in the handler's transaction."""

    def __init__(self, *, source: str) -> None:
        self.source = source
        self.emitted: list[Emitted] = []
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the unit of work has committed; never if it rolled back
        (figures for /metrics, which a retried record must not count twice)."""
        self._after_commit.append(callback)

    async def before_commit(self, write: Callable[[], Awaitable[object]]) -> None:
        """Run ``write`` in the unit of work before it commits: here at once; an emitter
        that collects a batch's writes runs it after every handler of the batch, in order.

        For writes that lock what every transaction needs (the audit chain's head): taken
        last, after the records' own locks, concurrent batches cannot deadlock over them,
        and the lock is held for the end of a batch only.
        """
        await write()

    def committed(self) -> None:
        """Called by whoever committed the unit of work: runs the ``after_commit`` callbacks."""
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

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
        emitted = Emitted(topic=topic, key=key or business_process_id, envelope=envelope, data=data)
        await self._write(emitted)
        self.emitted.append(emitted)
        return envelope

    @abstractmethod
    async def _write(self, emitted: Emitted) -> None:
        """Keep the event so that it leaves if, and only if, the unit of work commits."""


class RecordingEmitter(Emitter):
    """An emitter that only records: what a handler emitted, for a unit test to read."""

    async def _write(self, emitted: Emitted) -> None:
        return None

    def of_type(self, data_type: type[C]) -> list[C]:
        return [e.data for e in self.emitted if isinstance(e.data, data_type)]

    def on_topic(self, topic: str) -> list[Emitted]:
        return [e for e in self.emitted if e.topic == topic]
