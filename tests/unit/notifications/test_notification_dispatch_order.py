"""Several cases' notices go out at once; one case's notices on a channel never overlap or overtake.

The dispatcher runs on the in-memory stores with a channel that records, for every attempt,
when it started and ended and how many were under way, so overlap is observed, not assumed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import pytest

from contracts import Channel
from services.notifications import handlers
from services.notifications.adapters.memory import MemoryUnitOfWork
from services.notifications.dispatcher import Dispatcher
from services.notifications.domain import Pending
from services.notifications.errors import TemporaryDeliveryError
from tests.unit.notifications.support import Hub, incoming, request

pytestmark = pytest.mark.asyncio

STEPS = ("received", "departure-confirmed", "arrival-registered", "completed")


@dataclass
class RecordingChannel:
    """Takes a little while per notice; notes what was under way at once, per case and overall."""

    seconds_per_notice: float = 0.01
    fail_once: set[str] = field(default_factory=set)  # notification ids that fail temporarily once
    hold: dict[str, asyncio.Event] = field(default_factory=dict)  # case id -> released when set
    sent: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # case -> ids in order
    attempted: list[str] = field(default_factory=list)
    under_way: int = 0
    most_under_way: int = 0
    under_way_per_case: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    most_under_way_in_one_case: int = 0

    async def deliver(self, item: Pending) -> None:
        self.attempted.append(item.notification_id)
        self.under_way += 1
        self.under_way_per_case[item.case_id] += 1
        self.most_under_way = max(self.most_under_way, self.under_way)
        self.most_under_way_in_one_case = max(
            self.most_under_way_in_one_case, self.under_way_per_case[item.case_id]
        )
        try:
            if item.case_id in self.hold:
                await self.hold[item.case_id].wait()
            await asyncio.sleep(self.seconds_per_notice)
            if item.notification_id in self.fail_once:
                self.fail_once.discard(item.notification_id)
                raise TemporaryDeliveryError("SMTP 451: try again later")
            self.sent[item.case_id].append(item.notification_id)
        finally:
            self.under_way -= 1
            self.under_way_per_case[item.case_id] -= 1


async def queue(hub: Hub, cases: int, steps: tuple[str, ...] = STEPS) -> None:
    """Step by step, as cases progress: every case's first notice, then every case's second..."""
    for step in steps:
        for case in range(cases):
            case_id = f"eumzug-{case}"
            msg = incoming(request(f"{case_id}:{step}"), case_id=case_id)
            await handlers.accept_notification(msg, hub.unit_of_work())
            hub.clock.advance(0.001)


def dispatcher(hub: Hub, channel: RecordingChannel, *, concurrency: int = 16) -> Dispatcher:
    return Dispatcher(
        hub.units,
        {Channel.EMAIL: channel},
        concurrency=concurrency,
        backoff_initial_s=10,
        backoff_max_s=40,
        poll_interval_s=0.01,
    )


def in_order(case_id: str, steps: tuple[str, ...] = STEPS) -> list[str]:
    return [f"{case_id}:{step}" for step in steps]


async def test_several_cases_are_sent_at_once_and_each_case_in_the_order_requested() -> None:
    hub, channel = Hub(), RecordingChannel()
    await queue(hub, cases=5)
    assert await dispatcher(hub, channel).dispatch_due() == 20
    assert channel.most_under_way == 5  # one attempt of every case at once
    assert channel.most_under_way_in_one_case == 1
    assert {case: ids for case, ids in channel.sent.items()} == {
        f"eumzug-{n}": in_order(f"eumzug-{n}") for n in range(5)
    }


async def test_no_more_attempts_are_under_way_than_the_concurrency_allows() -> None:
    hub, channel = Hub(), RecordingChannel()
    await queue(hub, cases=6, steps=STEPS[:1])
    worker = dispatcher(hub, channel, concurrency=2)
    assert await worker.dispatch_due() == 4  # a claim is twice the concurrency
    assert await worker.dispatch_due() == 2
    assert channel.most_under_way == 2
    assert sum(len(ids) for ids in channel.sent.values()) == 6


async def test_after_a_temporary_failure_the_rest_of_the_case_waits_for_its_retry() -> None:
    hub, channel = Hub(), RecordingChannel(fail_once={"eumzug-0:received"})
    await queue(hub, cases=2)
    worker = dispatcher(hub, channel)
    await worker.dispatch_due()
    assert channel.sent["eumzug-1"] == in_order("eumzug-1")  # the other case is not held back
    assert channel.attempted.count("eumzug-0:departure-confirmed") == 0
    assert await hub.history("eumzug-0:completed") == ["created", "sending", "created"]
    assert hub.statuses("eumzug-0:completed") == []  # given back, not attempted: nothing to report
    assert await worker.dispatch_due() == 0  # nothing of the case before the retry is due
    hub.clock.advance(10 * 1.5)
    while await worker.dispatch_due():
        pass
    assert channel.sent["eumzug-0"] == in_order("eumzug-0")
    assert hub.statuses("eumzug-0:received") == [
        ("temporary-failure", "SMTP 451: try again later"),
        ("delivered", None),
    ]
    assert hub.statuses("eumzug-0:completed") == [("delivered", None)]


async def test_the_running_dispatcher_does_not_let_a_stuck_case_hold_back_the_others() -> None:
    hub = Hub()
    stuck = asyncio.Event()
    channel = RecordingChannel(hold={"eumzug-0": stuck})
    await queue(hub, cases=3)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher(hub, channel).run(stop))
    try:
        async with asyncio.timeout(5):
            while len(channel.sent["eumzug-1"]) + len(channel.sent["eumzug-2"]) < 2 * len(STEPS):
                await asyncio.sleep(0.01)
        assert channel.sent["eumzug-0"] == []
        # Queued while the stuck case is still under way: claimed without waiting for it.
        await handlers.accept_notification(
            incoming(request("eumzug-9:received"), case_id="eumzug-9"), hub.unit_of_work()
        )
        async with asyncio.timeout(5):
            while not channel.sent["eumzug-9"]:
                await asyncio.sleep(0.01)
        assert channel.sent["eumzug-0"] == []
        stuck.set()
        async with asyncio.timeout(5):
            while len(channel.sent["eumzug-0"]) < len(STEPS):
                await asyncio.sleep(0.01)
    finally:
        stuck.set()
        stop.set()
        await asyncio.wait_for(running, 5)
    assert channel.sent["eumzug-0"] == in_order("eumzug-0")
    assert channel.most_under_way_in_one_case == 1


async def test_outcomes_that_end_together_are_recorded_in_one_unit_of_work() -> None:
    hub, together = Hub(), asyncio.Event()
    channel = RecordingChannel(seconds_per_notice=0.0, hold={f"eumzug-{n}": together for n in range(8)})
    await queue(hub, cases=8, steps=STEPS[:1])
    units_begun = 0
    begin = hub.units.begin

    def counting_begin() -> AbstractAsyncContextManager[MemoryUnitOfWork]:
        nonlocal units_begun
        units_begun += 1
        return begin()

    async def end_together() -> None:
        while channel.under_way < 8:
            await asyncio.sleep(0.001)
        together.set()

    hub.units.begin = counting_begin  # type: ignore[method-assign,assignment]
    _, sent = await asyncio.gather(end_together(), dispatcher(hub, channel).dispatch_due())
    assert sent == 8
    assert units_begun == 2  # one to claim, one to record the eight outcomes
    assert all(hub.statuses(f"eumzug-{n}:received") == [("delivered", None)] for n in range(8))
