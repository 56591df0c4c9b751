"""Reading and writing Kafka header values for the CloudEvents binding."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from contracts.errors import EnvelopeError

__all__ = [
    "CONTENT_TYPE_HEADER",
    "DECODERS",
    "encode_value",
    "header_for",
    "header_value",
    "single_header",
]

CE_PREFIX = "ce_"
CONTENT_TYPE_HEADER = "content-type"

# RFC 3339 with a mandatory offset. pydantic's lax parsing would also take
# dates, naive times and Unix timestamps, which CloudEvents does not allow.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def header_value(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    """The last value of header ``name`` decoded as UTF-8, or None if absent.

    Kafka allows repeated keys; like the Java client's ``lastHeader`` the last
    one wins. Names match exactly, except ``content-type``, which producers
    coming from HTTP sometimes capitalise.
    """
    values = _values(headers, name)
    return values[-1] if values else None


def _values(headers: Sequence[tuple[str, bytes]], name: str) -> list[str]:
    fold = name.lower() == CONTENT_TYPE_HEADER
    values = []
    for key, raw in headers:
        if (key.lower() == CONTENT_TYPE_HEADER) if fold else (key == name):
            try:
                values.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise EnvelopeError(f"header {name} is not UTF-8") from None
    return values


def single_header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    # A repeated attribute is ambiguous: which id or type would be the real one?
    values = _values(headers, name)
    if len(values) > 1:
        raise EnvelopeError(f"duplicate header {name}")
    return values[0] if values else None


def header_for(attribute: str) -> str:
    return CONTENT_TYPE_HEADER if attribute == "datacontenttype" else CE_PREFIX + attribute


def encode_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        # Always UTC: an offset with seconds would not be valid RFC 3339.
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, StrEnum):
        return value.value
    return str(value)


def _decode_time(raw: str) -> datetime:
    if not _RFC3339.fullmatch(raw):
        raise ValueError("expected an RFC 3339 timestamp with a time zone offset")
    # fromisoformat (3.11) takes "Z" and truncates nanoseconds to microseconds.
    return datetime.fromisoformat(raw.upper())


def _decode_bool(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError('expected "true" or "false"')
    return raw == "true"


DECODERS: dict[str, Callable[[str], Any]] = {
    "time": _decode_time,
    "testdelivery": _decode_bool,
}
