"""W3C trace context, carried through as plain headers.

The hub traces every case with OpenTelemetry and puts ``traceparent`` (and ``tracestate``)
on each delivery. A partner that sends its answer with the same headers keeps the case on
one trace, without an OpenTelemetry SDK of its own. The headers are not signed, so they may
be set after signing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

TRACE_HEADERS = ("traceparent", "tracestate")
# version-traceid-parentid-flags; an all-zero trace or parent id is invalid (W3C Trace Context).
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-(?P<trace_id>[0-9a-f]{32})-(?P<parent_id>[0-9a-f]{16})-[0-9a-f]{2}")


def trace_context(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """The record's ``traceparent`` and ``tracestate`` as text, if it has a valid traceparent."""
    found: dict[str, str] = {}
    for name, value in headers:
        if name in TRACE_HEADERS and isinstance(value, bytes):
            found[name] = value.decode("ascii", errors="replace")
    if trace_id_of(found) is None:
        return {}  # a tracestate without a valid traceparent means nothing (W3C Trace Context)
    return found


def trace_id_of(context: Mapping[str, str]) -> str | None:
    """The 32 hex digits of the trace a context belongs to, if its traceparent is valid."""
    match = _TRACEPARENT.fullmatch(context.get("traceparent", ""))
    if match is None or set(match["trace_id"]) == {"0"} or set(match["parent_id"]) == {"0"}:
        return None
    return match["trace_id"]


def trace_headers(context: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """Kafka headers that pass ``context`` on; nothing for an invalid or empty one."""
    if trace_id_of(context) is None:
        return []
    return [(name, context[name].encode("ascii")) for name in TRACE_HEADERS if name in context]
