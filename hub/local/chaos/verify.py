"""After the storm: what happened, counted in the database, the SMTP sink and the topics.

A delivery or notice counts once per *distinct effect*: Kafka may hold a second copy of a
record with the same ``ce_id`` (the outbox relay publishes at least once, and consumers
drop the copy), which is not a duplicate. Two different event ids for the same case,
partner and type, two notification rows for one notice, or an email with a Message-ID the
notice does not have are duplicates. An email sent again with the notice's own Message-ID
(the dispatcher was killed after the server accepted it and before it recorded that) is
the mail transport's at-least-once, as the same ``ce_id`` twice is Kafka's: mail clients
show one message per Message-ID. SMTP offers no idempotent submission, so such
retransmissions are counted apart (``resent``) and printed, never hidden. Dead letters
count per original record (topic, partition, offset).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg

from contracts import CaseDelivery
from hub.local.chaos.kafka_io import ReadRecord, list_topics, read_topic
from hub.local.chaos.scenario import AGENCIES, CITIZEN_TEMPLATES, DELIVERED_TYPES, NOTICE_CHANNELS, Stream
from hub.local.embedded.smtp import SmtpSink
from hub.runtime.db import connect
from hub.runtime.deadletter import DLT_SUFFIX
from hub.runtime.topics import delivery_topic
from services import SERVICE_NAMES
from services.notifications.channels import message_id as email_message_id

COMPLETED = "completed"
DELIVERED = "delivered"
MAX_EXAMPLES = 5

DeliveryKey = tuple[str, str, str]  # case, partner, delivered event type
NoticeKey = tuple[str, str, str]  # case, template, channel
Original = tuple[str, int, int]  # topic, partition, offset of a dead-lettered record


@dataclass(frozen=True)
class DeadLetter:
    original: Original
    event_id: str | None
    reason: str


@dataclass
class Observed:
    case_status: dict[str, str] = field(default_factory=dict)
    db_deliveries: dict[DeliveryKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    kafka_deliveries: dict[DeliveryKey, set[str]] = field(default_factory=lambda: defaultdict(set))
    kafka_delivery_records: int = 0
    notices: dict[NoticeKey, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    message_ids: dict[NoticeKey, str] = field(default_factory=dict)  # email notices: their Message-ID
    inbox: set[str] = field(default_factory=set)  # notification ids in the citizens' inboxes
    emails: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # Message-ID -> received
    db_dead_letters: dict[tuple[str, str, int, int], int] = field(default_factory=lambda: defaultdict(int))
    kafka_dead_letters: dict[str, list[DeadLetter]] = field(default_factory=lambda: defaultdict(list))
    backlog: dict[str, int] = field(default_factory=dict)


@dataclass
class Tally:
    lost: int = 0
    duplicated: int = 0
    dead_lettered: int = 0
    resent: int = 0  # emails transmitted again with the same Message-ID (see the module docstring)
    findings: list[str] = field(default_factory=list)
    _examples: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def note(self, kind: str, text: str) -> None:
        """Keep a few examples of each kind of problem; the counts say how many there were."""
        self._examples[kind] += 1
        if self._examples[kind] <= MAX_EXAMPLES:
            self.findings.append(f"{kind}: {text}")

    def summary(self) -> list[str]:
        return [f"{kind}: {count} in all" for kind, count in self._examples.items() if count > MAX_EXAMPLES]


async def observe(dsn: str, bootstrap_servers: str, smtp: SmtpSink, stream: Stream) -> Observed:
    seen = Observed()
    case_ids = [case.case_id for case in stream.cases]
    conn = await connect(dsn, application_name="hub-chaos")
    try:
        await _observe_database(conn, case_ids, seen)
    finally:
        await conn.close()
    for message in smtp.messages():
        if message["X-Hub-Case-Id"] in seen.case_status:
            seen.emails[str(message["Message-ID"])] += 1
    await _observe_topics(bootstrap_servers, seen)
    return seen


async def _observe_database(conn: asyncpg.Connection, case_ids: list[str], seen: Observed) -> None:
    rows = await conn.fetch("SELECT case_id, status FROM registry.cases WHERE case_id = ANY($1)", case_ids)
    seen.case_status = {case_id: "missing" for case_id in case_ids} | {
        r["case_id"]: r["status"] for r in rows
    }
    partner_by_topic = {delivery_topic(partner): partner for partner in AGENCIES}
    for row in await conn.fetch(
        "SELECT id::text AS id, topic, aggregateid, payload FROM registry.outbox"
        " WHERE type = $1 AND aggregateid = ANY($2)",
        CaseDelivery.event_type,
        case_ids,
    ):
        delivered = json.loads(bytes(row["payload"]))["event_type_delivered"]
        partner = partner_by_topic.get(row["topic"], row["topic"])
        seen.db_deliveries[(row["aggregateid"], partner, delivered)].add(row["id"])
    for row in await conn.fetch(
        "SELECT notification_id, case_id, channel, template, status"
        " FROM notifications.notifications WHERE case_id = ANY($1)",
        case_ids,
    ):
        key = (row["case_id"], row["template"], row["channel"])
        seen.notices[key].append((row["notification_id"], row["status"]))
        if row["channel"] == "email":
            # The Message-ID as the dispatcher writes it: the sink is searched for exactly that.
            seen.message_ids[key] = email_message_id(row["notification_id"])
    inbox = await conn.fetch(
        "SELECT notification_id FROM notifications.inbox_messages WHERE case_id = ANY($1)", case_ids
    )
    seen.inbox = {row["notification_id"] for row in inbox}
    for schema in SERVICE_NAMES:
        for row in await conn.fetch(
            f'SELECT consumer, topic, partition, kafka_offset FROM "{schema}".dead_letters'
        ):
            seen.db_dead_letters[(row["consumer"], row["topic"], row["partition"], row["kafka_offset"])] += 1
        seen.backlog[schema] = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".outbox WHERE published_at IS NULL'
        )


async def _observe_topics(bootstrap_servers: str, seen: Observed) -> None:
    for partner in AGENCIES:
        for record in await read_topic(bootstrap_servers, delivery_topic(partner)):
            case_id = (record.key or b"").decode()
            if case_id not in seen.case_status:
                continue
            seen.kafka_delivery_records += 1
            delivered = json.loads(record.value)["event_type_delivered"]
            seen.kafka_deliveries[(case_id, partner, delivered)].add(record.header("ce_id") or "")
    for topic in sorted(t for t in await list_topics(bootstrap_servers) if t.endswith(DLT_SUFFIX)):
        seen.kafka_dead_letters[topic] = [
            _dead_letter(record) for record in await read_topic(bootstrap_servers, topic)
        ]


def _dead_letter(record: ReadRecord) -> DeadLetter:
    original = (
        record.header("dlt-original-topic") or "?",
        int(record.header("dlt-original-partition") or -1),
        int(record.header("dlt-original-offset") or -1),
    )
    reason = f"{record.header('dlt-exception-fqcn')}: {record.header('dlt-exception-message')}"
    return DeadLetter(original, record.header("ce_id"), reason)


def tally(stream: Stream, seen: Observed) -> Tally:
    result = Tally()
    _tally_cases(seen, result)
    _tally_deliveries(stream, seen, result)
    _tally_notices(stream, seen, result)
    _tally_dead_letters(stream, seen, result)
    for schema, backlog in seen.backlog.items():
        if backlog:
            result.note("outbox backlog", f"{schema} has {backlog} unpublished rows")
    return result


def _tally_cases(seen: Observed, result: Tally) -> None:
    for case_id, status in seen.case_status.items():
        if status != COMPLETED:
            result.lost += 1
            result.note("case not completed", f"{case_id} is {status}")


def _tally_deliveries(stream: Stream, seen: Observed, result: Tally) -> None:
    expected = {
        (case.case_id, partner, event_type)
        for case in stream.cases
        for partner in AGENCIES
        for event_type in DELIVERED_TYPES
    }
    for key in sorted(expected | set(seen.db_deliveries) | set(seen.kafka_deliveries)):
        in_db, on_topic = seen.db_deliveries.get(key, set()), seen.kafka_deliveries.get(key, set())
        effects = in_db | on_topic
        if key not in expected:
            result.duplicated += len(effects)
            result.note("unexpected delivery", f"{key}: {sorted(effects)}")
            continue
        if not in_db or not on_topic:
            result.lost += 1
            result.note("delivery missing", f"{key}: outbox {sorted(in_db)}, topic {sorted(on_topic)}")
        if len(effects) > 1:
            result.duplicated += len(effects) - 1
            result.note("delivery duplicated", f"{key}: {len(effects)} distinct event ids {sorted(effects)}")


def _tally_notices(stream: Stream, seen: Observed, result: Tally) -> None:
    expected = {
        (case.case_id, template, channel)
        for case in stream.cases
        for template in CITIZEN_TEMPLATES
        for channel in NOTICE_CHANNELS
    }
    for key in sorted(expected | set(seen.notices)):
        rows = seen.notices.get(key, [])
        if key not in expected:
            result.duplicated += len(rows)
            result.note("unexpected notice", f"{key}: {rows}")
            continue
        if not rows or not any(status == DELIVERED for _id, status in rows):
            result.lost += 1
            result.note("notice not delivered", f"{key}: {rows or 'no row'}")
        if len(rows) > 1:
            result.duplicated += len(rows) - 1
            result.note("notice duplicated", f"{key}: {rows}")
        if rows and key[2] == "inbox" and not any(row_id in seen.inbox for row_id, _status in rows):
            result.lost += 1
            result.note("inbox message missing", f"{key}")
    _tally_emails(seen, result)


def _tally_emails(seen: Observed, result: Tally) -> None:
    expected = set(seen.message_ids.values())
    for key, message_id in sorted(seen.message_ids.items()):
        received = seen.emails.get(message_id, 0)
        if received == 0:
            result.lost += 1
            result.note("email not received", f"{key} ({message_id}); notice {seen.notices.get(key)}")
        elif received > 1:
            result.resent += received - 1
    for message_id, received in seen.emails.items():
        if message_id not in expected:
            result.duplicated += received
            result.note("unexpected email", f"{message_id} received {received} times")


def _tally_dead_letters(stream: Stream, seen: Observed, result: Tally) -> None:
    poison_ids = {poison.draft.event_id for poison in stream.poisons}
    originals: dict[Original, DeadLetter] = {}
    for topic, letters in seen.kafka_dead_letters.items():
        for letter in letters:
            originals.setdefault(letter.original, letter)
            if letter.event_id not in poison_ids:
                result.note("unexpected dead letter", f"{topic}: {letter.event_id} ({letter.reason[:200]})")
    result.dead_lettered = len(originals)
    missing = poison_ids - {letter.event_id for letter in originals.values()}
    for event_id in sorted(missing):
        result.note("poison not dead-lettered", event_id)
    for (consumer, topic, partition, offset), count in seen.db_dead_letters.items():
        if count > 1:
            result.duplicated += count - 1
            result.note("dead-lettered twice", f"{consumer} {topic}[{partition}]@{offset}: {count} rows")


def describe(seen: Observed) -> Iterable[str]:
    """What was counted, for the report above the final line."""
    completed = sum(status == COMPLETED for status in seen.case_status.values())
    yield f"cases completed: {completed} of {len(seen.case_status)}"
    db = sum(len(ids) for ids in seen.db_deliveries.values())
    kafka = sum(len(ids) for ids in seen.kafka_deliveries.values())
    yield (
        f"deliveries: {db} outbox rows, {kafka} distinct event ids on the delivery topics"
        f" ({seen.kafka_delivery_records} records, copies with the same ce_id included)"
    )
    notices = sum(len(rows) for rows in seen.notices.values())
    yield (
        f"notices: {notices} rows, {len(seen.inbox)} inbox messages,"
        f" {sum(seen.emails.values())} emails in the sink ({len(seen.emails)} distinct Message-IDs)"
    )
    for topic, letters in seen.kafka_dead_letters.items():
        if letters:
            yield f"{topic}: {len(letters)} records, {len({letter.original for letter in letters})} originals"
    yield f"dead_letters rows: {sum(seen.db_dead_letters.values())}; outbox backlog: {seen.backlog}"
