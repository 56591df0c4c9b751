"""What a dead letter keeps of the failed record: all of it, or a reference when it is too large.

A dead letter is stored (``dead_letters``) and published (``<topic>-dlt``). A record larger
than ``HUB_DEAD_LETTER_MAX_STORED_BYTES`` (key, value and headers) is neither: a copy of a
2 MB record would exceed what the producer may send (``max_request_size``) and what the
dead-letter topic takes, so it would sit in the outbox for good, and it would fill the
database with whatever any partner chose to send. It is kept as a reference instead: the
first ``PREVIEW_BYTES`` of the value, its size and SHA-256 (to match it with the sender's
copy), and the headers, each name and value cut short and at most ``MAX_HEADERS`` of
them, so a header of 2 MB cannot come through either. A reference cannot be redriven.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aiokafka import ConsumerRecord

PREVIEW_BYTES = 1024
KEY_BYTES = 512
HEADER_NAME_BYTES = 128
HEADER_VALUE_BYTES = 512
MAX_HEADERS = 64

# Headers a dead letter kept as a reference carries in addition to the dlt-* ones.
VALUE_TRUNCATED = "dlt-value-truncated"
HEADERS_TRUNCATED = "dlt-headers-truncated"
ORIGINAL_SIZE = "dlt-original-size"
ORIGINAL_SHA256 = "dlt-original-sha256"
ORIGINAL_RECORD_SIZE = "dlt-original-record-size"


def storable(text: str) -> str:
    """PostgreSQL text and jsonb refuse NUL characters; a poison record carrying one must
    still be dead-lettered, not make the dead-lettering itself fail."""
    return text.replace("\x00", "\ufffd")


def record_size(record: ConsumerRecord[bytes, bytes]) -> int:
    """Key, value, header names and values: what the record costs whatever Kafka adds."""
    headers = sum(len(name.encode()) + len(value) for name, value in record.headers)
    return len(record.key or b"") + len(record.value or b"") + headers


@dataclass(frozen=True)
class KeptRecord:
    """What is stored and published of a failed record."""

    key: bytes | None
    headers: list[tuple[str, str]]  # as text that PostgreSQL accepts
    value: bytes
    original_size: int  # of the value
    original_sha256: str  # of the value
    record_size: int
    truncated: bool  # a reference: value, key or headers cut short
    headers_truncated: bool = False

    def reference_headers(self) -> list[tuple[str, str]]:
        """What a reader of the dead-letter topic needs to know that this is not the record."""
        if not self.truncated:
            return []
        return [
            (VALUE_TRUNCATED, _flag(len(self.value) < self.original_size)),
            (HEADERS_TRUNCATED, _flag(self.headers_truncated)),
            (ORIGINAL_SIZE, str(self.original_size)),
            (ORIGINAL_SHA256, self.original_sha256),
            (ORIGINAL_RECORD_SIZE, str(self.record_size)),
        ]


def keep(record: ConsumerRecord[bytes, bytes], max_stored_bytes: int) -> KeptRecord:
    """The whole record if it is at most ``max_stored_bytes``, else a reference to it."""
    value = record.value or b""
    size = record_size(record)
    whole = size <= max_stored_bytes
    headers, cut = _text_headers(record, whole=whole)
    return KeptRecord(
        key=record.key if whole or record.key is None else record.key[:KEY_BYTES],
        headers=headers,
        value=value if whole else value[:PREVIEW_BYTES],
        original_size=len(value),
        original_sha256=hashlib.sha256(value).hexdigest(),
        record_size=size,
        truncated=not whole,
        headers_truncated=cut,
    )


def _text_headers(record: ConsumerRecord[bytes, bytes], *, whole: bool) -> tuple[list[tuple[str, str]], bool]:
    """The headers as storable text; for a reference each cut short and at most MAX_HEADERS.
    Also whether anything was cut."""
    if whole:
        return [(storable(name), _text(value)) for name, value in record.headers], False
    kept = [
        (_text(name.encode()[:HEADER_NAME_BYTES]), _text(value[:HEADER_VALUE_BYTES]))
        for name, value in record.headers[:MAX_HEADERS]
    ]
    cut = len(record.headers) > MAX_HEADERS or any(
        len(name.encode()) > HEADER_NAME_BYTES or len(value) > HEADER_VALUE_BYTES
        for name, value in record.headers
    )
    return kept, cut


def _text(data: bytes) -> str:
    return storable(data.decode("utf-8", errors="replace"))


def _flag(value: bool) -> str:
    return "true" if value else "false"
