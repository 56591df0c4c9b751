"""One pass of the outbox relay over the rows it claimed: every case in order, none held up
by another's unpublishable row.

Rows form chains by topic and key: one case's events on one topic, which a consumer of
that topic reads in order (a key is always on one partition). A pass sends in waves: the
first row of every chain, then the next row of each chain whose row was acknowledged, and
so on. A chain stops at a row that failed, so a later row of the case can never overtake
it, and the rows already acknowledged are reported as such whatever happens to the rest.
One row per chain is in flight at a time; typical batches hold one row per chain, so a
pass is one wave.

A record the broker refused together with its partition's whole batch (``batch_refused``)
may be innocent: each such record is sent again on its own, and only a record refused
alone counts as refused for good.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Hashable, Sequence

from hub.errors import BrokerUnavailable
from hub.runtime.publisher import OutgoingRecord, Publisher
from hub.runtime.send_results import SendResult, transient


@dataclasses.dataclass
class PassResult:
    """Per row (in claim order) its result, or None if it was not sent: it waits behind a
    failed row of its chain. ``outage``: the publisher stopped answering during the pass."""

    results: list[SendResult | None]
    outage: BrokerUnavailable | None = None


async def publish_in_case_order(
    publisher: Publisher, chains: Sequence[Hashable], record_for: Callable[[int], OutgoingRecord]
) -> PassResult:
    """Publish rows ``0..len(chains)-1`` (in claim order, ``chains[i]`` naming row i's chain);
    ``record_for(i)`` builds row i's record when it is first sent."""
    waiting: dict[Hashable, deque[int]] = {}
    for index, chain in enumerate(chains):
        waiting.setdefault(chain, deque()).append(index)
    outcome = PassResult([None] * len(chains))
    records: dict[int, OutgoingRecord] = {}
    wave = sorted(queue.popleft() for queue in waiting.values())
    while wave:
        for index in wave:
            records.setdefault(index, record_for(index))
        try:
            answers = await publisher.send_batch([records[index] for index in wave])
        except BrokerUnavailable as outage:
            outcome.outage = outage
            return outcome
        for index, answer in zip(wave, answers, strict=True):
            outcome.results[index] = answer
        refused = [index for index in wave if _refused_with_its_batch(outcome.results[index])]
        outcome.outage = await _send_alone(publisher, refused, records, outcome.results)
        if outcome.outage is not None:
            return outcome
        wave = sorted(
            waiting[chains[index]].popleft()
            for index in wave
            if _acknowledged(outcome.results[index]) and waiting[chains[index]]
        )
    return outcome


async def _send_alone(
    publisher: Publisher,
    indexes: Sequence[int],
    records: dict[int, OutgoingRecord],
    results: list[SendResult | None],
) -> BrokerUnavailable | None:
    """Each record refused with its batch, again in a batch of its own: refused now, it is
    the culprit; acknowledged, it was not. One at a time, or they would share a batch again."""
    for position, index in enumerate(indexes):
        try:
            [answer] = await publisher.send_batch([records[index]])
        except BrokerUnavailable as outage:
            for untried in indexes[position:]:  # unproven: retried later, not parked
                results[untried] = transient(f"not sent again on its own: {outage}")
            return outage
        results[index] = dataclasses.replace(answer, batch_refused=False)
    return None


def _refused_with_its_batch(result: SendResult | None) -> bool:
    return result is not None and result.batch_refused


def _acknowledged(result: SendResult | None) -> bool:
    return result is not None and result.acknowledged
