"""The partners of the chaos run: the portal streams cases, three agencies answer them.

The agencies behave as careful partner systems do: each answers a case's move delivery
once (a redelivered copy, or a second delivery of the same thing, gets no second answer),
and an answer that has to be resent keeps its event id, so the hub can drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer

from contracts import CaseCompleted, CaseDelivery, Envelope, MoveReported, parse_data
from contracts.catalog import serialize_data
from contracts.channels import PARTNER_SOURCE_PREFIX
from hub.local.chaos.kafka_io import InsistentProducer
from hub.local.chaos.scenario import AGENCIES, Draft
from hub.local.demo import relocation_responders
from hub.local.partner_client import Delivery, verify_delivery
from hub.runtime import topics
from hub.security.keyring import Keyring
from hub.security.signing import SignatureRefused

# aiokafka's default: a fetch on a caught-up partition waits up to this long for new records.
DEFAULT_FETCH_MAX_WAIT_MS = 500

# Called with (case id, partner id) when a partner reads a case's completion delivery.
CompletionSeen = Callable[[str, str], None]


async def stream(
    producer: InsistentProducer,
    drafts: Sequence[Draft],
    keyring: Keyring,
    *,
    rate_per_s: float,
    on_sending: Callable[[Draft], None] = lambda _draft: None,
) -> None:
    """Sign and send ``drafts`` on their senders' ingress topics at a steady rate, as moves are reported.

    ``on_sending`` is called just before each record is handed to the producer: the moment
    the move is reported. An infinite rate sends each record as soon as the previous one is
    acknowledged.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, draft in enumerate(drafts):
        await asyncio.sleep(max(0.0, started + index / rate_per_s - loop.time()))
        record = draft.signed(keyring)
        on_sending(draft)
        await producer.send(topics.ingress_topic(draft.sender), record)


class Agencies:
    """Kriens, Lucerne and the tax office: each reads its delivery topic and confirms moves."""

    def __init__(
        self,
        bootstrap_servers: str,
        producer: InsistentProducer,
        case_ids: set[str],
        keyring: Keyring,
        *,
        on_completion_seen: CompletionSeen = lambda _case_id, _partner: None,
        fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._keyring = keyring
        self._producer = producer
        self._case_ids = set(case_ids)
        self._on_completion_seen = on_completion_seen
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._responders = relocation_responders("main")
        self._partner_by_topic = {topics.delivery_topic(partner): partner for partner in AGENCIES}
        self._answered: set[tuple[str, str]] = set()
        self._seen_ids: set[str] = set()
        # What the agencies saw, for the report: copies and second deliveries are the hub's to explain.
        self.seen: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    def expect(self, case_ids: Iterable[str]) -> None:
        """Answer these cases too: streams sent later to the same hub, to the same agencies."""
        self._case_ids.update(case_ids)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chaos-agencies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check(self) -> None:
        """Raise what made the agencies stop, if they did."""
        if self._task is not None and self._task.done() and not self._task.cancelled():
            self._task.result()

    async def _run(self) -> None:
        # No consumer group: the partition positions live in this process, which the run never
        # kills, so nothing is read twice because of a rebalance while the broker is paused.
        consumer = AIOKafkaConsumer(
            *self._partner_by_topic,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            async for record in consumer:
                await self._handle(self._partner_by_topic[record.topic], record.headers, record.value or b"")
        finally:
            await consumer.stop()

    async def _handle(self, partner: str, headers: Sequence[tuple[str, bytes]], value: bytes) -> None:
        envelope = Envelope.from_headers(headers)
        if envelope.businessprocessid not in self._case_ids:
            return
        try:
            verify_delivery(headers, value, self._keyring.hub_keys)
        except SignatureRefused as error:
            self.seen[f"refused: {type(error).__name__}"] += 1
            return
        if envelope.id in self._seen_ids:
            self.seen["copy of a delivery (same ce_id)"] += 1
            return
        self._seen_ids.add(envelope.id)
        data = parse_data(envelope.type, value)
        if not isinstance(data, CaseDelivery):
            self.seen["not a delivery"] += 1
            return
        self.seen[data.event_type_delivered] += 1
        if data.event_type_delivered == CaseCompleted.event_type:
            self._on_completion_seen(envelope.businessprocessid, partner)
        if data.event_type_delivered != MoveReported.event_type:
            return
        key = (envelope.businessprocessid, partner)
        if key in self._answered:
            self.seen["second move delivery (new ce_id)"] += 1
            return
        self._answered.add(key)
        self.seen["moves answered"] += 1
        for answer in self._responders[partner](Delivery(envelope, data, trace_id="")):
            reply = Envelope.new(
                answer,
                source=PARTNER_SOURCE_PREFIX + partner,
                business_process_id=envelope.businessprocessid,
                reference_id=envelope.id,
            )
            # Signed once: a resend carries the same id and signature, which the hub drops as a copy.
            await self._producer.send(
                topics.ingress_topic(partner),
                Draft(partner, reply, serialize_data(answer)).signed(self._keyring),
            )
