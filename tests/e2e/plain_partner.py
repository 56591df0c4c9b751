"""A partner's own client, written from docs/partners/signing.md alone.

It imports nothing of the hub (``test_signed_events`` checks that): plain aiokafka for Kafka,
the ``cryptography`` package for Ed25519, and the standard library. The headers are written
by hand, the way a client in another language would write them, and the signed form is built
from them as the document describes. Deliveries of the hub are checked the same way.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

Headers = Sequence[tuple[str, bytes]]
VERSION_LINE = b"ch.lu.hub.event-signature.v2\n"
ATTRIBUTE = re.compile(r"ce_[a-z0-9]+")


def signed_form(headers: Headers, value: bytes) -> bytes:
    """Sections 1 and 2 of the document."""
    chosen: dict[str, bytes] = {}
    for name, header_value in headers:
        if name.lower() == "content-type":
            name = "content-type"
        elif not name.startswith("ce_") or name == "ce_signature":
            continue
        if not ATTRIBUTE.fullmatch(name) and name != "content-type":
            raise ValueError(f"no CloudEvents attribute name: {name}")
        if name in chosen:
            raise ValueError(f"repeated header {name}")
        chosen[name] = header_value
    lines = [VERSION_LINE]
    for name in sorted(chosen, key=str.encode):
        lines.append(name.encode() + b":" + str(len(chosen[name])).encode() + b":" + chosen[name] + b"\n")
    lines.append(b"data-sha256:" + hashlib.sha256(value).hexdigest().encode() + b"\n")
    return b"".join(lines)


def sign(headers: Headers, value: bytes, key: Ed25519PrivateKey, key_id: str) -> list[tuple[str, bytes]]:
    """Section 3, "To sign a record": the key id first, then the signature over everything."""
    with_key_id = [*headers, ("ce_sigkeyid", key_id.encode())]
    signature = key.sign(signed_form(with_key_id, value))
    return [*with_key_id, ("ce_signature", base64.b64encode(signature))]


def verifies(headers: Headers, value: bytes, key: Ed25519PublicKey, key_id: str) -> bool:
    """Section 3, "To verify a record", steps 2 to 4."""
    signatures = [v for name, v in headers if name == "ce_signature"]
    key_ids = [v for name, v in headers if name == "ce_sigkeyid"]
    if len(signatures) != 1 or key_ids != [key_id.encode()]:
        return False
    try:
        key.verify(base64.b64decode(signatures[0], validate=True), signed_form(headers, value))
    except (InvalidSignature, ValueError):
        return False
    return True


def header(headers: Headers, name: str) -> str:
    [value] = [v for n, v in headers if n == name]
    return value.decode()


def javascript_time(moment: dt.datetime) -> str:
    """What ``new Date().toISOString()`` writes: UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def ingress_topic(partner_id: str) -> str:
    return "hub.ingress." + partner_id.lower().replace("/", ".")


def delivery_topic(partner_id: str) -> str:
    return "hub.delivery." + partner_id.lower().replace("/", ".")


def vn(serial: int) -> str:
    """A valid AHVN13 (756, then digits, then the EAN-13 check digit)."""
    first12 = f"7569{serial:08d}"
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


def move_report(serial: int, move_date: dt.date) -> bytes:
    """A citizen's move from Kriens to Lucerne, as JSON written by hand."""
    report: dict[str, Any] = {
        "person": {
            "vn": vn(serial),
            "official_name": "Muster",
            "first_name": "Lea",
            "sex": "2",
            "date_of_birth": "1991-06-02",
        },
        "contact": {"email": "lea.muster@example.ch", "language": "de"},
        "departure": {"bfs_number": 1059, "name": "Kriens", "canton": "LU"},
        "arrival": {"bfs_number": 1061, "name": "Luzern", "canton": "LU"},
        "previous_address": {
            "street": "Schachenstrasse",
            "house_number": "12",
            "postal_code": "6010",
            "town": "Kriens",
            "country": "CH",
        },
        "new_address": {
            "street": "Hertensteinstrasse",
            "house_number": "3",
            "postal_code": "6004",
            "town": "Luzern",
            "country": "CH",
        },
        "move_date": move_date.isoformat(),
    }
    return json.dumps(report).encode()


async def publish(
    bootstrap_servers: str, topic: str, records: Sequence[tuple[bytes, Headers, bytes]]
) -> None:
    """Send (key, headers, value) records, each exactly as given."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, headers, value in records:
            await producer.send_and_wait(topic, value, key=key, headers=list(headers))
    finally:
        await producer.stop()


async def read(
    bootstrap_servers: str, topic: str, *, seconds: float = 3
) -> list[ConsumerRecord[bytes, bytes]]:
    """The records on ``topic`` that arrive within ``seconds`` (from the start; no consumer group)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records += batch
    finally:
        await consumer.stop()
    return records
