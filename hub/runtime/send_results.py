"""What became of one record the hub tried to publish, and which failures are the record's own.

A publisher answers a batch record by record (hub/runtime/publisher.py), so that the outbox relay
can mark what the broker acknowledged, retry what may succeed later and park what never
will, instead of treating one bad record as an outage of the whole batch.

Kafka reports most problems of a record for the whole record batch of its partition: the
broker refuses the batch (too large for ``max.message.bytes``, corrupt, not authorized)
and every record in it fails with the same error. Such a failure is ``batch_refused``: the
culprit may be another record of the batch, so the relay sends each of them again on its
own before parking any (hub/runtime/outbox_waves.py). A failure raised by the client before the
record was queued (larger than ``max_request_size``, an illegal topic name) is the
record's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiokafka import errors as kafka_errors

# Errors that come back the same however often the same bytes are sent to the same topic.
# Everything else (no leader, timeouts, the broker away, not enough replicas) may pass.
_PERMANENT: tuple[type[BaseException], ...] = (
    kafka_errors.MessageSizeTooLargeError,  # 10: over max_request_size (client) or max.message.bytes
    kafka_errors.RecordListTooLargeError,  # 18: the record batch is larger than the segment size
    kafka_errors.RecordTooLargeError,
    kafka_errors.InvalidTopicError,  # 17
    kafka_errors.TopicAuthorizationFailedError,  # 29: the service's principal may not write there
    kafka_errors.CorruptRecordException,  # 2: CRC or format refused by the broker
    kafka_errors.InvalidTimestampError,  # 32: outside message.timestamp.difference.max.ms
    kafka_errors.UnsupportedForMessageFormatError,  # 43
    ValueError,  # a key, value or header the client cannot serialize
    TypeError,
)
# Kafka's rule for topic names; a metadata request for an illegal one is never answered
# with partitions, so without this check such a row would wait for metadata forever.
_LEGAL_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_MAX_REASON = 500


@dataclass(frozen=True)
class SendResult:
    """Acknowledged (no ``error``), or why not and whether sending it again can help."""

    error: str | None = None
    permanent: bool = False
    # The broker refused the record's whole partition batch: the cause may be another record.
    batch_refused: bool = False

    @property
    def acknowledged(self) -> bool:
        return self.error is None


ACKNOWLEDGED = SendResult()


def failed(error: BaseException, *, at_broker: bool) -> SendResult:
    """``error`` as a result: permanent if the record itself is refused; ``at_broker`` if it
    came back for a record batch rather than from the client for this record alone."""
    permanent = isinstance(error, _PERMANENT)
    return SendResult(error=describe(error), permanent=permanent, batch_refused=permanent and at_broker)


def transient(reason: str) -> SendResult:
    return SendResult(error=reason[:_MAX_REASON])


def describe(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return (f"{name}: {text}" if text and text != name else name)[:_MAX_REASON]


def illegal_topic(topic: str) -> SendResult | None:
    """A permanent failure for a topic name Kafka would never accept, else None."""
    if _LEGAL_TOPIC.fullmatch(topic) and topic not in (".", ".."):
        return None
    return SendResult(error=f"InvalidTopicError: {topic[:200]!r} is not a legal topic name", permanent=True)
