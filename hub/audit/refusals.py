"""Refused events as audit entries: the dead-letter hook a composition root puts on a route.

A partner event refused at ingress was never routed; the chain says so next to the
routing decisions. A service's refusal hook (``hub.runtime.deadletter.RefusalHook``; the
registry's is ``services/registry/refusals.py``) builds the entry with ``refusal_entry`` in
the transaction of the ``dead_letters`` row, so the entry and the dead letter commit
together or not at all. The service says which errors are refusals (``classes``, first match wins;
anything else, e.g. a bug that used up its retries, is not recorded) and whether the
claimed sender is proven (``sender_verified``: the registry checks the signature).

The entry is built from the record's headers only, never from its value: it names the
claimed partner, the event, the reason and the trace, and no person. Reasons are the
hub's own error texts, which name locations and rules but no payload values
(``contracts.errors.ContractViolation``), truncated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiokafka import ConsumerRecord
from opentelemetry import trace

from contracts.channels import PARTNER_SOURCE_PREFIX
from hub.audit.chain import AuditEntry, Decision
from hub.runtime.deadletter import text_header
from hub.runtime.telemetry import extract_context

ReasonClasses = Sequence[tuple[type[BaseException], str]]
SenderCheck = Callable[[asyncpg.Connection, ConsumerRecord[bytes, bytes], BaseException], Awaitable[bool]]

MAX_REASON = 500
_MAX_ATTRIBUTE = 200  # header values are the sender's to choose, lengths included


def reason_class(error: BaseException, classes: ReasonClasses) -> str | None:
    """The class of the first matching entry (order subclasses first), None if no refusal."""
    return next((name for kind, name in classes if isinstance(error, kind)), None)


def claimed_partner(source: str) -> str:
    """The partner id a ``ce_source`` claims; a source that names no partner is kept whole."""
    return source.removeprefix(PARTNER_SOURCE_PREFIX)


def refusal_entry(
    record: ConsumerRecord[bytes, bytes], error: BaseException, *, reason_class: str, sender_verified: bool
) -> AuditEntry:
    """What the chain keeps of a refused record: headers as claimed, and why it was refused."""

    def attribute(name: str) -> str:
        # Lengths, bytes (not UTF-8, NUL) are the sender's to choose: none may stop the record.
        return (text_header(record, name) or "")[:_MAX_ATTRIBUTE]

    source = attribute("ce_source")
    reason = f"{type(error).__name__}: {error}"[:MAX_REASON].replace("\x00", "\ufffd")
    return AuditEntry(
        decision=Decision.REFUSED,
        case_id=attribute("ce_businessprocessid"),
        case_type="",  # a refused event opened and touched no case
        event_id=attribute("ce_id"),
        event_type=attribute("ce_type"),
        trace_id=_trace_id(record),
        partner_id=claimed_partner(source) if source else None,
        reason=reason,
        reason_class=reason_class,
        sender_verified=sender_verified,
    )


def _trace_id(record: ConsumerRecord[bytes, bytes]) -> str:
    # The sender's trace (its traceparent header): the refusal is found next to its send span.
    context = trace.get_current_span(extract_context(record.headers)).get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
