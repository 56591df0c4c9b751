"""A partner probe: an outside partner's client that tries, against a running hub, each misuse
the hub must refuse, and one genuine event the hub must accept.

It is written from the partner-facing documents only (docs/partners/signing.md, docs/partners/
probe.md and the README's "Cases, routing and who may see what", "Signed events" and "Dead
letters") and imports nothing of the hub: plain aiokafka, the ``cryptography`` package and the
standard library, in one file a partner can copy. Records are CloudEvents in Kafka binary mode
with headers written by hand, signed with Ed25519 over the signed form of signing.md; the hub's
deliveries are verified the same way with the hub's public key (``hub keys show``), their Kafka
key and their recipient.

Each attempt is reported as JSON: what was sent (topic, partition, offset, key, headers, size),
what the documents say the hub does with it (refused with which reason, dropped as a duplicate,
accepted) and, with ``--dead-letters`` (a hub without Kafka ACLs, such as ``hub up``), what the
hub's dead-letter topics say it did. The exit status is 1 if anything the probe could check
went otherwise than expected. Usage: ``python tests/e2e/partner_probe.py --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import json
import re
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

Header = tuple[str, bytes]
VERSION_LINE = b"ch.lu.hub.event-signature.v2\n"
ATTRIBUTE = re.compile(r"ce_[a-z0-9]+")
SOURCE_PREFIX = "urn:ch:lu:hub:partner:"
TYPE_PREFIX = "ch.lu.hub."
ARRIVAL = TYPE_PREFIX + "relocation.arrival-registered.v1"
DEPARTURE = TYPE_PREFIX + "relocation.departure-confirmed.v1"
MOVE = TYPE_PREFIX + "relocation.move-reported.v1"
REJECTED = TYPE_PREFIX + "case.rejected.v1"
ACTION_REQUIRED = TYPE_PREFIX + "case.action-required.v1"
COMPLETED = TYPE_PREFIX + "case.completed.v1"
DELIVERY = TYPE_PREFIX + "case.delivery.v1"
ADMIN = "hub.admin"
OPERATOR_SOURCE = "urn:ch:lu:hub:admin:cli"
SET_SUBSCRIPTION = TYPE_PREFIX + "admin.set-subscription.v1"
REGISTER_KEY = TYPE_PREFIX + "admin.register-partner-key.v1"
HUGE = 2 * 1024 * 1024
GROUPS = ("party", "role", "topic", "admin", "signature", "control", "format", "oversized", "suspended")
DEFAULT_GROUPS = ("party", "role", "topic", "admin", "signature", "control", "format")


# --- Signing (docs/partners/signing.md, sections 1 to 3) ---------------------------------------


def signed_form(headers: Sequence[Header], value: bytes) -> bytes:
    """The bytes a signature covers: every ``ce_`` header but ``ce_signature``, and
    ``content-type``, ordered by name, each as name:length:value; then the value's SHA-256."""
    chosen: dict[str, bytes] = {}
    for name, header_value in headers:
        if name.lower() == "content-type":
            name = "content-type"
        elif not name.startswith("ce_") or name == "ce_signature":
            continue
        if name != "content-type" and not ATTRIBUTE.fullmatch(name):
            raise ValueError(f"no CloudEvents attribute name: {name}")
        if name in chosen:
            raise ValueError(f"repeated header {name}")
        chosen[name] = header_value
    lines = [VERSION_LINE]
    for name in sorted(chosen, key=str.encode):
        lines.append(name.encode() + b":" + str(len(chosen[name])).encode() + b":" + chosen[name] + b"\n")
    lines.append(b"data-sha256:" + hashlib.sha256(value).hexdigest().encode() + b"\n")
    return b"".join(lines)


def signature_over(form: bytes, key: Ed25519PrivateKey) -> bytes:
    return base64.b64encode(key.sign(form))


def sign(headers: Sequence[Header], value: bytes, key: Ed25519PrivateKey, key_id: str) -> list[Header]:
    """ "To sign a record": the key id first (it is signed), then the signature over everything."""
    with_key_id = [*headers, ("ce_sigkeyid", key_id.encode())]
    return [*with_key_id, ("ce_signature", signature_over(signed_form(with_key_id, value), key))]


def verifies(headers: Sequence[Header], value: bytes, key: Ed25519PublicKey, key_id: str) -> bool:
    """ "To verify a record", steps 2 to 4: one signature, the trusted key id, a valid signature."""
    signatures = [v for name, v in headers if name == "ce_signature"]
    key_ids = [v for name, v in headers if name == "ce_sigkeyid"]
    if len(signatures) != 1 or key_ids != [key_id.encode()]:
        return False
    try:
        key.verify(base64.b64decode(signatures[0], validate=True), signed_form(headers, value))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- Records -------------------------------------------------------------------------------------


def javascript_time(moment: dt.datetime) -> str:
    """What ``new Date().toISOString()`` writes: UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def topic_name(prefix: str, partner_id: str) -> str:
    """``hub.ingress.`` / ``hub.delivery.`` and the partner id lowercased, every run of other
    characters than a-z, 0-9 and ``-`` one dot (deploy/README.md, "Kafka ACLs per principal")."""
    return prefix + re.sub(r"[^a-z0-9-]+", ".", partner_id.lower())


def dead_letter_topic(topic: str) -> str:
    """Where the hub dead-letters a record of ``topic``: every partner's ingress topic shares
    ``hub.ingress-dlt``, every other topic has its twin ``<topic>-dlt`` (README, "Architecture")."""
    return "hub.ingress-dlt" if topic.startswith("hub.ingress.") else topic + "-dlt"


def header(headers: Sequence[Header], name: str) -> str | None:
    values = [v for n, v in headers if n == name]
    return values[0].decode(errors="replace") if len(values) == 1 else None


def replaced(headers: Sequence[Header], name: str, value: bytes) -> list[Header]:
    return [(n, value if n == name else v) for n, v in headers]


def without(headers: Sequence[Header], *names: str) -> list[Header]:
    return [(n, v) for n, v in headers if n not in names]


def attributes(
    partner_id: str, event_type: str, case_id: str, *, moment: dt.datetime | None = None
) -> list[Header]:
    """The required attributes only (no ``ce_action``, ``ce_testdelivery``, ``ce_dataschema``),
    ``ce_time`` as a JavaScript client writes it."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", (SOURCE_PREFIX + partner_id).encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", javascript_time(moment or dt.datetime.now(dt.UTC)).encode()),
        ("ce_businessprocessid", case_id.encode()),
        ("content-type", b"application/json"),
    ]


def as_json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


# --- Attempts and the report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the documents say the hub does with an attempt.

    ``outcome``: refused (dead-lettered to hub.ingress-dlt, listed by ``hub audit refusals``),
    duplicate (dropped by the hub's inbox: no dead letter, no effect) or accepted.
    ``error``: the reason's name (the last part of ``dlt-exception-fqcn``); ``reason_class``:
    the class ``hub audit refusals`` files it under (None: a command on hub.admin, whose
    refusals are dead letters of the service it was meant for, not partner events).
    """

    outcome: str
    error: str | None = None
    reason_class: str | None = None


@dataclass
class Attempt:
    name: str
    group: str
    what: str
    topic: str
    key: bytes | None
    headers: list[Header]
    value: bytes
    expected: Expected
    partition: int | None = None
    offset: int | None = None
    sent_at: str | None = None
    observed: dict[str, Any] | None = None
    verdict: str = "not-checked"

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": self.group,
            "what": self.what,
            "sent": {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "at": self.sent_at,
                "key": None if self.key is None else self.key.decode(errors="replace")[:200],
                "event_id": header(self.headers, "ce_id"),
                "event_type": header(self.headers, "ce_type"),
                "source": header(self.headers, "ce_source"),
                "case_id": header(self.headers, "ce_businessprocessid"),
                "value_bytes": len(self.value),
                "headers": [[n, _shown(v)] for n, v in self.headers],
            },
            "expected": dataclasses.asdict(self.expected),
            "observed": self.observed,
            "verdict": self.verdict,
        }


def _shown(value: bytes) -> str:
    text = value.decode(errors="replace")
    return text if len(text) <= 200 else f"{text[:80]}... ({len(value)} bytes)"


@dataclass(frozen=True)
class SigningKeyFile:
    key_id: str
    key: Ed25519PrivateKey


@dataclass(frozen=True)
class Options:
    bootstrap: str
    partner_id: str
    key: SigningKeyFile
    hub_key_id: str
    hub_key: Ed25519PublicKey
    groups: tuple[str, ...]
    own_case: str | None = None
    foreign_case: str | None = None
    other_partner: str | None = None
    opener: str | None = None
    foreign_key_id: str | None = None
    spare_key: SigningKeyFile | None = None
    revoked_key: SigningKeyFile | None = None
    expired_key: SigningKeyFile | None = None
    dead_letters: bool = False
    wait_s: float = 60.0

    @property
    def ingress(self) -> str:
        return topic_name("hub.ingress.", self.partner_id)

    @property
    def delivery_topic(self) -> str:
        return topic_name("hub.delivery.", self.partner_id)


@dataclass
class Delivery:
    """One record on the probe's delivery topic, checked as signing.md section 3 says."""

    topic: str
    partition: int
    offset: int
    case_id: str | None
    event_id: str | None
    reference_id: str | None
    delivered_type: str | None
    recipient: str | None
    signature_verified: bool
    keyed_by_case: bool
    addressed_to_me: bool
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def genuine(self) -> bool:
        return self.signature_verified and self.keyed_by_case and self.addressed_to_me

    def report(self) -> dict[str, Any]:
        shown = dataclasses.asdict(self)
        shown.pop("data")
        shown["genuine"] = self.genuine
        return shown


def check_delivery(record: ConsumerRecord[bytes, bytes], options: Options) -> Delivery:
    headers = list(record.headers)
    value = record.value or b""
    verified = verifies(headers, value, options.hub_key, options.hub_key_id)
    case_id = header(headers, "ce_businessprocessid")
    body: dict[str, Any] = {}
    if verified:  # only then is the data parsed
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else {}
    return Delivery(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        case_id=case_id,
        event_id=header(headers, "ce_id"),
        reference_id=header(headers, "ce_referenceid"),
        delivered_type=body.get("event_type_delivered"),
        recipient=body.get("recipient"),
        signature_verified=verified,
        keyed_by_case=case_id is not None and record.key == case_id.encode(),
        addressed_to_me=body.get("recipient") == options.partner_id,
        data=body.get("data") if isinstance(body.get("data"), dict) else {},
    )


# --- Kafka without consumer groups ---------------------------------------------------------------


class TopicReader:
    """Reads a topic from its beginning by assigning its partitions: no consumer group to
    join (a partner's ACL grants Read on its delivery topic), new records as they come."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_bytes=16 * 1024 * 1024
        )
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self._consumer.start()
        await self._assign()

    async def _assign(self) -> None:
        await self._consumer.topics()  # loads the metadata partitions_for_topic answers from
        found = sorted(self._consumer.partitions_for_topic(self.topic) or ())
        if len(found) == len(self._partitions):
            return
        self._partitions = [TopicPartition(self.topic, p) for p in found]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_s: float = 0.5) -> list[ConsumerRecord[bytes, bytes]]:
        if not self._partitions:
            await self._assign()
            if not self._partitions:
                await asyncio.sleep(timeout_s)
                return []
        batches = await self._consumer.getmany(*self._partitions, timeout_ms=int(timeout_s * 1000))
        return [record for batch in batches.values() for record in batch]

    async def to_end(self) -> list[ConsumerRecord[bytes, bytes]]:
        """Everything up to the topic's current end."""
        records: list[ConsumerRecord[bytes, bytes]] = []
        if not self._partitions:
            await self._assign()
        if not self._partitions:
            return records
        end = await self._consumer.end_offsets(self._partitions)
        async with asyncio.timeout(60):  # the end is known: reaching it takes seconds
            while any([await self._consumer.position(p) < end[p] for p in self._partitions]):
                records += await self.poll()
        return records


# --- The probe -----------------------------------------------------------------------------------


class Probe:
    """Builds the attempts of the chosen groups, sends each as it is, then watches what a partner
    can watch (its deliveries) and, with ``--dead-letters``, the hub's dead-letter topics."""

    _producer: AIOKafkaProducer  # set by run(), in its event loop
    _mine: TopicReader  # the probe's delivery topic

    def __init__(self, options: Options) -> None:
        self.options = options
        self.attempts: list[Attempt] = []
        self.notes: list[str] = []
        self.deliveries: list[Delivery] = []
        self._unknown_case = f"eumzug-probe-{uuid.uuid4()}"

    # Building blocks ------------------------------------------------------------------------

    def _event(
        self,
        event_type: str,
        case_id: str,
        data: dict[str, Any],
        *,
        key: SigningKeyFile | None = None,
        moment: dt.datetime | None = None,
        source: str | None = None,
    ) -> tuple[list[Header], bytes]:
        """Headers and value of an event of this partner, signed with ``key`` (default: its own)."""
        value = as_json(data)
        headers = attributes(source or self.options.partner_id, event_type, case_id, moment=moment)
        signer = key or self.options.key
        return sign(headers, value, signer.key, signer.key_id), value

    def _add(
        self,
        name: str,
        group: str,
        what: str,
        expected: Expected,
        headers: list[Header],
        value: bytes,
        *,
        topic: str | None = None,
        key: bytes | None = None,
    ) -> Attempt:
        """An attempt to send: keyed by its case id (signing.md, section 3) unless ``key``."""
        case_id = header(headers, "ce_businessprocessid")
        record_key = key if key is not None else (case_id or "").encode()
        attempt = Attempt(
            name, group, what, topic or self.options.ingress, record_key, headers, value, expected
        )
        self.attempts.append(attempt)
        return attempt

    def _skip(self, group: str, why: str) -> None:
        self.notes.append(f"{group}: skipped, {why}")

    def _municipality(self) -> dict[str, Any]:
        """The probe's own municipality, as the hub delivered it in the move to it (``arrival``)."""
        for delivery in self.deliveries:
            arrival = delivery.data.get("arrival")
            if delivery.case_id == self.options.own_case and isinstance(arrival, dict):
                return arrival
        bfs = re.search(r"/(\d{1,4})/", self.options.partner_id)
        return {"bfs_number": int(bfs.group(1)) if bfs else 1, "name": "Probe", "canton": "LU"}

    def _target(self) -> str:
        """The case the signature, format and topic attempts name: its own case, where each of
        them would be a valid event but for its one defect; else the foreign case, else a case
        id nobody knows (the hub checks all of those before it looks for the case)."""
        return self.options.own_case or self.options.foreign_case or self._unknown_case

    def _arrival(self) -> dict[str, Any]:
        today = dt.date.today().isoformat()
        return {"municipality": self._municipality(), "registered_on": today}

    # The attempts, group by group ---------------------------------------------------------

    def party(self) -> None:
        """Acting on a case the probe is no party to: each refused as not a party."""
        case = self.options.foreign_case
        if case is None:
            return self._skip("party", "needs --foreign-case")
        me, today = self.options.partner_id, dt.date.today().isoformat()
        not_a_party = Expected("refused", "NotAParty", "not-a-party")
        steps: list[tuple[str, str, str, dict[str, Any]]] = [
            ("milestone-arrival-on-foreign-case", "arrival-registered", ARRIVAL, self._arrival()),
            (
                "milestone-departure-on-foreign-case",
                "departure-confirmed",
                DEPARTURE,
                {"municipality": self._municipality(), "confirmed_on": today},
            ),
            (
                "rejection-on-foreign-case",
                "a rejection",
                REJECTED,
                {"rejected_by": me, "reason": "Die Person ist hier nicht gemeldet."},
            ),
            (
                "action-required-on-foreign-case",
                "a request to the citizen",
                ACTION_REQUIRED,
                {"requested_by": me, "action": "Bitte melden Sie sich am Schalter."},
            ),
        ]
        for name, label, event_type, data in steps:
            headers, value = self._event(event_type, case, data)
            self._add(name, "party", f"{label} on a case it is no party to", not_a_party, headers, value)
        return None

    def role(self) -> None:
        """Opening a relocation: only the portal's role may."""
        case = f"eumzug-probe-{uuid.uuid4()}"
        report = {
            "person": {
                "vn": _ahvn13(int(uuid.uuid4().int % 10**8)),
                "official_name": "Probe",
                "first_name": "Paula",
                "sex": "2",
                "date_of_birth": "1990-01-01",
            },
            "contact": {"email": "paula.probe@example.ch", "language": "de"},
            "departure": {"bfs_number": 1059, "name": "Kriens", "canton": "LU"},
            "arrival": self._municipality(),
            "previous_address": _address("Kriens"),
            "new_address": _address(str(self._municipality().get("name", "Probe"))),
            "move_date": dt.date.today().isoformat(),
        }
        headers, value = self._event(MOVE, case, report)
        self._add(
            "opening-without-the-role",
            "role",
            "a move report (opens a case; the portal's role only)",
            Expected("refused", "NotAuthorized", "not-authorized"),
            headers,
            value,
        )

    def topic(self) -> None:
        """Another partner's ingress topic, or another partner's name: the topic binds the sender
        (README, "Where partners publish"), the signature proves it (signing.md, section 6)."""
        other, case = self.options.other_partner, self._target()
        if other is None:
            return self._skip("topic", "needs --other-partner")
        foreign = Expected("refused", "ForeignIngressTopic", "not-authorized")
        theirs = topic_name("hub.ingress.", other)
        headers, value = self._event(ARRIVAL, case, self._arrival())
        self._add(
            "own-event-on-another-partners-topic",
            "topic",
            f"its own signed arrival-registered, on {theirs}",
            foreign,
            headers,
            value,
            topic=theirs,
        )
        headers, value = self._event(ARRIVAL, case, self._arrival(), source=other)
        self._add(
            "impersonation-on-the-other-partners-topic",
            "topic",
            f"an arrival-registered claiming {other}, on {theirs}, signed with its own key: the topic "
            "fits the claim, the key does not",
            Expected("refused", "ForeignSigningKey", "signature"),
            headers,
            value,
            topic=theirs,
        )
        headers, value = self._event(ARRIVAL, case, self._arrival(), source=other)
        self._add(
            "impersonation-on-its-own-topic",
            "topic",
            f"an arrival-registered claiming {other}, on its own ingress topic",
            foreign,
            headers,
            value,
        )
        self._borrowed_id(foreign)
        return None

    def _borrowed_id(self, foreign: Expected) -> None:
        """The id of an event it learnt from a delivery (``ce_referenceid``), under the source
        that sent it, on its own topic: the hub has seen that source and id, and must refuse the
        claim, not take the copy for a repeat of the original."""
        opener, case = self.options.opener, self.options.own_case
        referenced = next(
            (d.reference_id for d in self.deliveries if d.case_id == case and d.delivered_type == MOVE), None
        )
        if opener is None or referenced is None:
            return self._skip("topic", "borrowed-event-id needs --opener and the move delivery of --own-case")
        headers, value = self._event(ARRIVAL, case or "", self._arrival(), source=opener)
        headers = replaced(headers, "ce_id", referenced.encode())
        signer = self.options.key
        headers = sign(without(headers, "ce_sigkeyid", "ce_signature"), value, signer.key, signer.key_id)
        self._add(
            "borrowed-event-id-claiming-the-opener",
            "topic",
            f"an event claiming {opener} under the id of its move report (from a delivery), "
            "on its own ingress topic",
            foreign,
            headers,
            value,
        )
        return None

    def admin(self) -> None:
        """Commands on hub.admin (a Kafka ACL keeps partners off it; the hub must refuse them
        anyway): only the hub's operators and partners with the operations role may send them."""
        me, o = self.options.partner_id, self.options
        wide = {
            "partner_id": me,
            "subscribed_event_type": MOVE,
            "case_type": "relocation",
            "purpose": "every move in the canton",
            "legal_basis": "none",
            "fields": ["person.official_name", "person.first_name", "person.date_of_birth", "new_address"],
            "retention_days": 3650,
            "status": "approved",
            "scope": "all-cases",
        }
        headers, value = self._event(SET_SUBSCRIPTION, me, wide)
        self._add(
            "subscription-for-itself",
            "admin",
            "an approved subscription to every move (all-cases), for itself, on hub.admin",
            Expected("refused", "NotAuthorized", None),
            headers,
            value,
            topic=ADMIN,
        )
        headers, value = self._event(SET_SUBSCRIPTION, me, wide)
        as_operator = replaced(
            without(headers, "ce_sigkeyid", "ce_signature"), "ce_source", OPERATOR_SOURCE.encode()
        )
        headers = sign(as_operator, value, o.key.key, o.key.key_id)
        self._add(
            "posing-as-the-operator",
            "admin",
            "the same subscription under the operators' CLI source, signed with its own key",
            Expected("refused", "UnknownSigningKey", None),
            headers,
            value,
            topic=ADMIN,
        )
        other = o.other_partner
        if other is None:
            return self._skip("admin", "key-for-another-partner needs --other-partner")
        raw = o.key.key.public_key().public_bytes_raw()
        planted = {
            "partner_id": other,
            "key_id": f"probe-planted-{uuid.uuid4().hex[:8]}",
            "algorithm": "ed25519",
            "public_key": base64.b64encode(raw).decode(),
        }
        headers, value = self._event(REGISTER_KEY, other, planted)
        self._add(
            "key-for-another-partner",
            "admin",
            f"its own public key registered for {other}, on hub.admin",
            Expected("refused", "NotAuthorized", None),
            headers,
            value,
            topic=ADMIN,
        )
        return None

    def signature(self) -> None:
        """Otherwise valid arrival-registered events on its own case, each with one defect of
        its signature, key or time (signing.md, section 6)."""
        case = self._target()
        data, o = self._arrival(), self.options

        def event(**kwargs: Any) -> tuple[list[Header], bytes]:
            return self._event(ARRIVAL, case, data, **kwargs)

        def add(name: str, what: str, error: str, headers: list[Header], value: bytes, **kw: Any) -> None:
            reason_class = "replay-window" if error in ("StaleEvent", "FutureEvent") else "signature"
            self._add(name, "signature", what, Expected("refused", error, reason_class), headers, value, **kw)

        headers, value = event()
        add(
            "unsigned",
            "no ce_sigkeyid, no ce_signature",
            "UnsignedEvent",
            without(headers, "ce_sigkeyid", "ce_signature"),
            value,
        )
        headers, value = event()
        add(
            "key-id-without-signature",
            "ce_sigkeyid but no ce_signature",
            "UnsignedEvent",
            without(headers, "ce_signature"),
            value,
        )
        forger = SigningKeyFile(o.key.key_id, Ed25519PrivateKey.generate())
        add(
            "forged",
            "signed with a key the hub does not know, under its own key id",
            "BadSignature",
            *event(key=forger),
        )
        stranger = SigningKeyFile(f"probe-unknown-{uuid.uuid4().hex[:8]}", Ed25519PrivateKey.generate())
        add(
            "unknown-key",
            "signed under a key id nobody registered",
            "UnknownSigningKey",
            *event(key=stranger),
        )
        if o.foreign_key_id is not None:
            borrowed = SigningKeyFile(o.foreign_key_id, o.key.key)
            add(
                "another-partners-key-id",
                f"its signature under {o.foreign_key_id}, another partner's key id",
                "ForeignSigningKey",
                *event(key=borrowed),
            )
        else:
            self._skip("signature", "another-partners-key-id needs --foreign-key-id")
        headers, value = event()
        add(
            "tampered-value",
            "the value changed after signing",
            "BadSignature",
            headers,
            value.replace(b'"registered_on"', b'"remarks": "changed", "registered_on"'),
        )
        headers, value = event()
        later = javascript_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).encode()
        add(
            "signed-header-changed",
            "ce_time changed after signing",
            "BadSignature",
            replaced(headers, "ce_time", later),
            value,
        )
        headers, value = event()
        add(
            "ce-header-added",
            "ce_subject added after signing",
            "BadSignature",
            [*headers, ("ce_subject", b"added-later")],
            value,
        )
        if o.spare_key is not None:
            headers, value = event()
            add(
                "key-id-swapped",
                f"signed with {o.key.key_id}, then ce_sigkeyid set to its other key {o.spare_key.key_id}",
                "BadSignature",
                replaced(headers, "ce_sigkeyid", o.spare_key.key_id.encode()),
                value,
            )
        else:
            self._skip("signature", "key-id-swapped needs --spare-key-file/--spare-key-id")
        headers, value = event()
        add(
            "replayed-under-new-id",
            "a signed event sent again with a new ce_id, not signed again",
            "BadSignature",
            replaced(headers, "ce_id", str(uuid.uuid4()).encode()),
            value,
        )
        headers, value = event()
        self._add(
            "malformed-signature",
            "signature",
            "ce_signature of 32 bytes: no Ed25519 signature, refused as a malformed attribute",
            Expected("refused", "EnvelopeError", "contract"),
            replaced(headers, "ce_signature", base64.b64encode(b"\x00" * 32)),
            value,
        )
        add(
            "stale-time",
            "correctly signed, ce_time 7 hours old (an old event under a new id)",
            "StaleEvent",
            *event(moment=dt.datetime.now(dt.UTC) - dt.timedelta(hours=7)),
        )
        add(
            "future-time",
            "correctly signed, ce_time 10 minutes ahead",
            "FutureEvent",
            *event(moment=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)),
        )
        for label, held, error in (
            ("revoked", o.revoked_key, "RevokedSigningKey"),
            ("expired", o.expired_key, "KeyOutsideValidity"),
        ):
            if held is not None:
                add(f"{label}-key", f"signed with its {label} key {held.key_id}", error, *event(key=held))
            else:
                self._skip("signature", f"{label}-key needs --{label}-key-file/--{label}-key-id")
        headers, value = event()
        add(
            "keyed-otherwise",
            "the Kafka key is not its case id",
            "MisroutedRecord",
            headers,
            value,
            key=b"another-key",
        )
        value = as_json(data)
        unsigned = [
            *attributes(o.partner_id, ARRIVAL, case),
            ("ce_partnerref", b"a"),
            ("ce_partnerref", b"b"),
        ]
        add(
            "repeated-extension",
            "an extension attribute twice",
            "AmbiguousHeaders",
            _raw_sign(unsigned, value, o.key),
            value,
        )
        unsigned = [
            *attributes(o.partner_id, ARRIVAL, case),
            ("ce_time", javascript_time(dt.datetime.now(dt.UTC)).encode()),
        ]
        self._add(
            "repeated-attribute",
            "signature",
            "ce_time twice: an attribute the hub reads, refused before the signature",
            Expected("refused", "EnvelopeError", "contract"),
            _raw_sign(unsigned, value, o.key),
            value,
        )
        unsigned = [*attributes(o.partner_id, ARRIVAL, case), ("ce_partner_ref", b"a")]
        add(
            "invalid-attribute-name",
            "a ce_ header that is no attribute name (ce_partner_ref)",
            "AmbiguousHeaders",
            _raw_sign(unsigned, value, o.key),
            value,
        )
        return None

    def control(self) -> None:
        """The genuine event: its arrival-registered on the case it is the arrival municipality
        of, JavaScript-style ce_time, no optional attribute; then the very same record again."""
        case = self.options.own_case
        if case is None:
            return self._skip("control", "needs --own-case")
        headers, value = self._event(ARRIVAL, case, self._arrival())
        self._add(
            "genuine-arrival-registered",
            "control",
            "its arrival-registered on its own case: ce_time with milliseconds and Z, no optional attribute",
            Expected("accepted"),
            headers,
            value,
        )
        self._add(
            "replayed-same-id",
            "control",
            "the same record again (same ce_source and ce_id)",
            Expected("duplicate"),
            headers,
            value,
        )
        return None

    def format(self) -> None:
        """Records the hub cannot read as an event: each refused with the contract's reason."""
        case = self._target()
        o, data = self.options, self._arrival()
        contract = "contract"

        def signed(event_type: str, value: bytes, headers: list[Header] | None = None) -> list[Header]:
            return sign(headers or attributes(o.partner_id, event_type, case), value, o.key.key, o.key.key_id)

        value = as_json({"destination": "moon"})
        self._add(
            "unknown-type",
            "format",
            "ce_type the catalogue does not know",
            Expected("refused", "UnknownEventType", contract),
            signed(TYPE_PREFIX + "relocation.moon-landing-reported.v1", value),
            value,
        )
        value = as_json(data)
        self._add(
            "unknown-version",
            "format",
            "arrival-registered.v9",
            Expected("refused", "UnknownEventType", contract),
            signed(ARRIVAL.replace(".v1", ".v9"), value),
            value,
        )
        value = b"<arrival><registered/></arrival>"
        self._add(
            "not-json",
            "format",
            "an XML value",
            Expected("refused", "ContractViolation", contract),
            signed(ARRIVAL, value),
            value,
        )
        value = as_json({**data, "registered_on": "yesterday"})
        self._add(
            "contract-violation",
            "format",
            "registered_on is not a date",
            Expected("refused", "ContractViolation", contract),
            signed(ARRIVAL, value),
            value,
        )
        value = as_json(data)
        stripped = without(attributes(o.partner_id, ARRIVAL, case), "ce_specversion")
        self._add(
            "missing-specversion",
            "format",
            "an otherwise valid arrival-registered without ce_specversion",
            Expected("refused", "EnvelopeError", contract),
            signed(ARRIVAL, value, stripped),
            value,
        )
        stripped = without(attributes(o.partner_id, ARRIVAL, case), "ce_type", "ce_time")
        self._add(
            "missing-ce-headers",
            "format",
            "no ce_type, no ce_time",
            Expected("refused", "EnvelopeError", contract),
            signed(ARRIVAL, value, stripped),
            value,
        )
        xml = replaced(attributes(o.partner_id, ARRIVAL, case), "content-type", b"application/xml")
        self._add(
            "wrong-content-type",
            "format",
            "content-type application/xml",
            Expected("refused", "EnvelopeError", contract),
            signed(ARRIVAL, value, xml),
            value,
        )
        unknown = f"eumzug-probe-{uuid.uuid4()}"
        headers, value = self._event(ARRIVAL, unknown, data)
        self._add(
            "unknown-case",
            "format",
            "arrival-registered on a case id the hub does not know",
            Expected("refused", "UnknownCase", "unknown-case"),
            headers,
            value,
        )
        return None

    def oversized(self) -> None:
        """2 MB on its own ingress topic: a value, then a header (the hub's limit is 256 KiB)."""
        case = self._target()
        too_large = Expected("refused", "MessageTooLarge", "too-large")
        value = as_json(self._arrival())
        padded = value[:-1] + b" " * HUGE + b"}"  # still a valid arrival-registered, only larger
        headers, _ = self._event(ARRIVAL, case, self._arrival())
        signer = self.options.key
        headers = sign(without(headers, "ce_sigkeyid", "ce_signature"), padded, signer.key, signer.key_id)
        self._add(
            "value-2mb", "oversized", "a signed arrival-registered padded to 2 MB", too_large, headers, padded
        )
        headers, value = self._event(ARRIVAL, case, self._arrival())
        self._add(
            "header-2mb",
            "oversized",
            "an arrival-registered with a 2 MB header",
            too_large,
            [*headers, ("x-partner-note", b"n" * HUGE)],
            value,
        )

    def suspended(self) -> None:
        """A correctly signed event while the partner is suspended."""
        case = self._target()
        headers, value = self._event(ARRIVAL, case, self._arrival())
        self._add(
            "while-suspended",
            "suspended",
            "a correctly signed arrival-registered while the partner is suspended",
            Expected("refused", "NotAuthorized", "not-authorized"),
            headers,
            value,
        )

    # Running --------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        # Created here: aiokafka's clients belong to the running event loop.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.options.bootstrap, acks="all", max_request_size=4 * HUGE
        )
        self._mine = TopicReader(self.options.bootstrap, self.options.delivery_topic)
        await self._producer.start()
        await self._mine.start()
        try:
            if self.options.own_case is not None:
                await self._await_own_move()
            for group in GROUPS:
                if group in self.options.groups:
                    getattr(self, group)()
            for attempt in self.attempts:
                await self._send(attempt)
            await self._observe()
        finally:
            await self._mine.stop()
            await self._producer.stop()
        return self.report()

    async def _await_own_move(self) -> None:
        """A partner answers the delivery of the case: the move report for its own case."""
        deadline = asyncio.get_running_loop().time() + self.options.wait_s
        while not any(
            d.case_id == self.options.own_case and d.delivered_type == MOVE for d in self.deliveries
        ):
            if asyncio.get_running_loop().time() > deadline:
                self.notes.append(
                    f"no move delivery of {self.options.own_case} within {self.options.wait_s:.0f}s"
                )
                return
            self.deliveries += [check_delivery(r, self.options) for r in await self._mine.poll()]

    async def _send(self, attempt: Attempt) -> None:
        attempt.sent_at = dt.datetime.now(dt.UTC).isoformat()
        try:
            metadata = await self._producer.send_and_wait(
                attempt.topic, attempt.value, key=attempt.key, headers=attempt.headers
            )
        except KafkaError as error:
            # A broker that enforces the ingress topic's max.message.bytes, or an ACL that keeps
            # a partner off another partner's topic, refuses the record at once.
            attempt.observed = {"outcome": "refused-by-broker", "error": type(error).__name__}
            attempt.verdict = "as-expected" if attempt.expected.outcome == "refused" else "unexpected"
            return
        attempt.partition, attempt.offset = metadata.partition, metadata.offset

    async def _observe(self) -> None:
        """What a partner sees (its deliveries), and with --dead-letters what the hub refused."""
        if "control" in self.options.groups and self.options.own_case is not None:
            await self._await_completion()
        self.deliveries += [check_delivery(r, self.options) for r in await self._mine.to_end()]
        if self.options.dead_letters:
            await self._judge_by_dead_letters()

    async def _await_completion(self) -> None:
        """The genuine event counts once the case completes: its completion is delivered."""
        deadline = asyncio.get_running_loop().time() + self.options.wait_s
        while not self._completed():
            if asyncio.get_running_loop().time() > deadline:
                break
            self.deliveries += [check_delivery(r, self.options) for r in await self._mine.poll()]
        completed = self._completed()
        for attempt in self.attempts:
            if attempt.expected.outcome == "accepted":
                attempt.observed = {"outcome": "accepted" if completed else "no completion delivered"}
                attempt.verdict = "as-expected" if completed else "unexpected"

    def _completed(self) -> bool:
        return any(
            d.genuine and d.case_id == self.options.own_case and d.delivered_type == COMPLETED
            for d in self.deliveries
        )

    async def _judge_by_dead_letters(self) -> None:
        """Reads the dead-letter topics (an operator's view) until every attempt expected to be
        refused has its dead letter, matched by the original topic, partition and offset."""
        sent = {(a.topic, a.partition, a.offset): a for a in self.attempts if a.offset is not None}
        wanted = {k for k, a in sent.items() if a.expected.outcome == "refused"}
        found: dict[tuple[str, int | None, int | None], ConsumerRecord[bytes, bytes]] = {}
        readers = [
            TopicReader(self.options.bootstrap, topic)
            for topic in sorted({dead_letter_topic(a.topic) for a in sent.values()})
        ]
        for reader in readers:
            await reader.start()
        try:
            deadline = asyncio.get_running_loop().time() + self.options.wait_s
            while not wanted <= found.keys() and asyncio.get_running_loop().time() < deadline:
                for reader in readers:
                    found |= {_origin(r): r for r in await reader.poll(0.2) if _origin(r) in sent}
            for reader in readers:  # a dead letter of a record not expected to be refused
                found |= {_origin(r): r for r in await reader.to_end() if _origin(r) in sent}
        finally:
            for reader in readers:
                await reader.stop()
        for origin, attempt in sent.items():
            letter = found.get(origin)
            if attempt.expected.outcome == "accepted" and letter is None:
                continue  # judged by its completion
            attempt.observed = _dead_letter_seen(letter)
            attempt.verdict = "as-expected" if _as_expected(attempt.expected, letter) else "unexpected"

    def report(self) -> dict[str, Any]:
        own = self.options.own_case
        foreign = [d for d in self.deliveries if d.case_id != own]
        not_genuine = [d for d in self.deliveries if not d.genuine]
        verdicts = [a.verdict for a in self.attempts]
        return {
            "partner_id": self.options.partner_id,
            "ingress_topic": self.options.ingress,
            "delivery_topic": self.options.delivery_topic,
            "groups": list(self.options.groups),
            "attempts": [a.report() for a in self.attempts],
            "deliveries": [d.report() for d in self.deliveries],
            "notes": self.notes,
            "summary": {
                "attempts": len(self.attempts),
                "as_expected": verdicts.count("as-expected"),
                "unexpected": [a.name for a in self.attempts if a.verdict == "unexpected"],
                "not_checked": [a.name for a in self.attempts if a.verdict == "not-checked"],
                "deliveries": len(self.deliveries),
                "deliveries_not_genuine": len(not_genuine),
                "deliveries_of_other_cases": sorted({d.case_id or "" for d in foreign}),
            },
        }


def _raw_sign(headers: list[Header], value: bytes, key: SigningKeyFile) -> list[Header]:
    """A signature over headers the signed form cannot be built from (signing.md, section 1):
    built over them one by one, as a careless client would."""
    with_key_id = [*headers, ("ce_sigkeyid", key.key_id.encode())]
    form = VERSION_LINE + b"".join(
        n.encode() + b":" + str(len(v)).encode() + b":" + v + b"\n"
        for n, v in sorted(with_key_id, key=lambda item: item[0].encode())
        if n.startswith("ce_") or n.lower() == "content-type"
    )
    form += b"data-sha256:" + hashlib.sha256(value).hexdigest().encode() + b"\n"
    return [*with_key_id, ("ce_signature", signature_over(form, key.key))]


def _origin(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int | None, int | None]:
    headers = list(record.headers)
    partition, offset = header(headers, "dlt-original-partition"), header(headers, "dlt-original-offset")
    return (
        header(headers, "dlt-original-topic") or "",
        int(partition) if partition and partition.isdigit() else None,
        int(offset) if offset and offset.isdigit() else None,
    )


def _dead_letter_seen(letter: ConsumerRecord[bytes, bytes] | None) -> dict[str, Any]:
    if letter is None:
        return {"outcome": "no dead letter"}
    headers = list(letter.headers)
    fqcn = header(headers, "dlt-exception-fqcn") or ""
    return {
        "outcome": "refused",
        "error": fqcn.rsplit(".", 1)[-1],
        "error_fqcn": fqcn,
        "message": header(headers, "dlt-exception-message"),
        "dead_letter": {"partition": letter.partition, "offset": letter.offset},
        "value_truncated": header(headers, "dlt-value-truncated"),
        "headers_truncated": header(headers, "dlt-headers-truncated"),
        "original_size": header(headers, "dlt-original-size"),
    }


def _as_expected(expected: Expected, letter: ConsumerRecord[bytes, bytes] | None) -> bool:
    if expected.outcome != "refused":
        return letter is None
    if letter is None:
        return False
    return (header(list(letter.headers), "dlt-exception-fqcn") or "").rsplit(".", 1)[-1] == expected.error


def _ahvn13(serial: int) -> str:
    """A valid AHVN13: 756, digits, the EAN-13 check digit."""
    first12 = f"7569{serial:08d}"
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


def _address(town: str) -> dict[str, str]:
    return {
        "street": "Dorfstrasse",
        "house_number": "1",
        "postal_code": "6000",
        "town": town,
        "country": "CH",
    }


# --- Command line ---------------------------------------------------------------------------------


def _private_key(path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path}: not an Ed25519 private key")
    return key


def _hub_key(text: str) -> Ed25519PublicKey:
    """The hub's public key: a PEM file (``hub keys show --out``) or base64 of the 32 bytes."""
    path = Path(text)
    if path.is_file():
        key = load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise SystemExit(f"{path}: not an Ed25519 public key")
        return key
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def _optional_key(args: argparse.Namespace, name: str) -> SigningKeyFile | None:
    path, key_id = getattr(args, f"{name}_key_file"), getattr(args, f"{name}_key_id")
    if (path is None) != (key_id is None):
        raise SystemExit(f"--{name}-key-file and --{name}-key-id go together")
    return None if path is None else SigningKeyFile(key_id, _private_key(path))


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        description="Try each misuse the hub must refuse, as an outside partner; print a JSON report."
    )
    cli.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, HOST:PORT")
    cli.add_argument(
        "--partner-id", required=True, help="the probe's partner id, e.g. CH/MUN/1063/einwohnerdienste"
    )
    cli.add_argument("--key-file", required=True, type=Path, help="its Ed25519 private key (PKCS#8 PEM)")
    cli.add_argument("--key-id", required=True, help="the id that key is registered under")
    cli.add_argument("--hub-key-id", required=True, help="the hub's delivery key id (hub keys show)")
    cli.add_argument("--hub-public-key", required=True, help="the hub's public key: PEM file or base64")
    cli.add_argument("--own-case", help="a case the probe is the arrival municipality of (the control)")
    cli.add_argument("--foreign-case", help="a case the probe is no party to")
    cli.add_argument("--other-partner", help="another partner: its ingress topic, its name claimed")
    cli.add_argument("--opener", help="the partner that opened --own-case (the cantonal portal)")
    cli.add_argument("--foreign-key-id", help="a key id registered for another partner")
    for name, what in (("spare", "a second valid"), ("revoked", "a revoked"), ("expired", "an expired")):
        cli.add_argument(f"--{name}-key-file", type=Path, help=f"{what} key of the probe (PEM)")
        cli.add_argument(f"--{name}-key-id", help=f"the id of {what} key")
    cli.add_argument(
        "--only", help=f"comma-separated groups of {', '.join(GROUPS)}; default: {','.join(DEFAULT_GROUPS)}"
    )
    cli.add_argument(
        "--dead-letters",
        action="store_true",
        help="judge each attempt by its dead letter (needs Read on the *-dlt topics)",
    )
    cli.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for a delivery or dead letters"
    )
    cli.add_argument("--report", type=Path, help="write the JSON report here too")
    return cli


def options(args: argparse.Namespace) -> Options:
    groups = tuple(g.strip() for g in args.only.split(",")) if args.only else DEFAULT_GROUPS
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise SystemExit(f"unknown groups: {', '.join(sorted(unknown))}")
    return Options(
        bootstrap=args.bootstrap,
        partner_id=args.partner_id,
        key=SigningKeyFile(args.key_id, _private_key(args.key_file)),
        hub_key_id=args.hub_key_id,
        hub_key=_hub_key(args.hub_public_key),
        groups=groups,
        own_case=args.own_case,
        foreign_case=args.foreign_case,
        other_partner=args.other_partner,
        opener=args.opener,
        foreign_key_id=args.foreign_key_id,
        spare_key=_optional_key(args, "spare"),
        revoked_key=_optional_key(args, "revoked"),
        expired_key=_optional_key(args, "expired"),
        dead_letters=args.dead_letters,
        wait_s=args.wait,
    )


def failed(report: dict[str, Any]) -> bool:
    summary = report["summary"]
    return bool(
        summary["unexpected"] or summary["deliveries_not_genuine"] or summary["deliveries_of_other_cases"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    report = asyncio.run(Probe(options(args)).run())
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.report is not None:
        args.report.write_text(text + "\n")
    for line in _summary_lines(report):
        print(line, file=sys.stderr)
    return 1 if failed(report) else 0


def _summary_lines(report: dict[str, Any]) -> Iterable[str]:
    for attempt in report["attempts"]:
        seen = attempt["observed"] or {}
        yield (
            f"{attempt['verdict']:<12} {attempt['name']:<44} expected {attempt['expected']['outcome']}"
            f" {attempt['expected']['error'] or ''}; saw {seen.get('outcome', '-')} {seen.get('error') or ''}"
        )
    summary = report["summary"]
    yield (
        f"{summary['as_expected']} of {summary['attempts']} as expected; deliveries {summary['deliveries']}"
        f" (not genuine {summary['deliveries_not_genuine']},"
        f" of other cases {summary['deliveries_of_other_cases']})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
