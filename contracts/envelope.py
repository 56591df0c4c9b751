"""CloudEvents 1.0 envelope in Kafka binary mode, with eCH-0058 extensions.

The record value is the event data itself; the attributes travel as
``ce_<name>`` headers and ``datacontenttype`` as ``content-type``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from contracts._headers import (
    CONTENT_TYPE_HEADER,
    DECODERS,
    encode_value,
    header_for,
    header_value,
    single_header,
)
from contracts.base import EVENT_TYPE_PATTERN, Contract
from contracts.errors import EnvelopeError

__all__ = ["SIGNATURE_PATTERN", "SIGNING_KEY_ID_PATTERN", "Action", "Envelope", "header_value"]

# The hub exchanges JSON only; media type parameters (charset) are tolerated.
_JSON_CONTENT_TYPE = r"(?i)^application/json\s*(;.*)?$"
SIGNING_KEY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""A signing key's id: chosen by its owner, unique across the hub, printable and header-safe."""
SIGNATURE_PATTERN = r"^[A-Za-z0-9+/]{86}==$"
"""An Ed25519 signature (64 bytes), standard base64 with padding."""


_STATED = ("specversion", "datacontenttype")  # attributes with a default that the wire must state


class Action(StrEnum):
    """eCH-0058 action, as words instead of the standard's numeric codes."""

    NEW = "new"
    RECALL = "recall"
    CORRECTION = "correction"
    REQUEST = "request"
    RESPONSE = "response"
    NEGATIVE_REPORT = "negative-report"
    POSITIVE_REPORT = "positive-report"
    FORWARD = "forward"
    REMINDER = "reminder"


class Envelope(BaseModel):
    """CloudEvents context attributes of one event.

    ``source`` + ``id`` is unique per event and is the consumers' dedup key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(pattern=r"^\S+$", description="URI-reference of the sender")
    type: str = Field(pattern=EVENT_TYPE_PATTERN)
    time: AwareDatetime
    subject: str | None = Field(default=None, min_length=1)
    dataschema: str | None = Field(default=None, pattern=r"^\S+$")
    datacontenttype: str = Field(default="application/json", pattern=_JSON_CONTENT_TYPE)
    # Extensions (CloudEvents allows lowercase alphanumerics only in names).
    businessprocessid: str = Field(min_length=1, max_length=128, description="eCH-0058 case id")
    referenceid: str | None = Field(default=None, min_length=1, max_length=128)
    action: Action = Action.NEW
    testdelivery: bool = False
    # Signature extensions: which key signed the event and the Ed25519 signature over the
    # record's headers and value as sent (``hub.security.signed_form``), never over this parsed model.
    # Optional here, so unsigned events still parse; whether a consumer requires them is its
    # policy, not the envelope's.
    sigkeyid: str | None = Field(default=None, pattern=SIGNING_KEY_ID_PATTERN)
    signature: str | None = Field(default=None, pattern=SIGNATURE_PATTERN)

    @classmethod
    def new(
        cls,
        data: Contract,
        *,
        source: str,
        business_process_id: str,
        subject: str | None = None,
        reference_id: str | None = None,
        action: Action = Action.NEW,
        test_delivery: bool = False,
        event_id: str | None = None,
        time: datetime | None = None,
    ) -> Envelope:
        """Envelope for ``data``; type and dataschema come from its class."""
        return cls(
            id=event_id if event_id is not None else str(uuid.uuid4()),
            source=source,
            type=type(data).event_type,
            time=time if time is not None else datetime.now(UTC),
            subject=subject,
            dataschema=data.dataschema(),
            businessprocessid=business_process_id,
            referenceid=reference_id,
            action=action,
            testdelivery=test_delivery,
        )

    def to_headers(self) -> list[tuple[str, bytes]]:
        """Kafka binary-mode headers; absent optional attributes are omitted."""
        headers: list[tuple[str, bytes]] = []
        for name, value in self.model_dump(exclude_none=True).items():
            headers.append((header_for(name), encode_value(value).encode("utf-8")))
        return headers

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes]]) -> Envelope:
        """Read the envelope of a Kafka record; raises ``EnvelopeError``.

        Unknown ``ce_*`` headers are ignored, as CloudEvents asks of consumers
        meeting extensions they do not know; so are non-CloudEvents headers.
        """
        attributes: dict[str, Any] = {}
        for name in cls.model_fields:
            header = header_for(name)
            raw = single_header(headers, header)
            if raw is None:
                continue
            decoder = DECODERS.get(name)
            try:
                attributes[name] = decoder(raw) if decoder is not None else raw
            except ValueError as error:
                raise EnvelopeError(f"invalid header {header}: {error}") from None
        # The model defaults these for producers; on the wire they must be stated (CloudEvents
        # requires specversion; a JSON body without its content type is a guess).
        unstated = [f"missing header {header_for(name)}" for name in _STATED if name not in attributes]
        try:
            envelope = cls.model_validate(attributes)
        except ValidationError as error:
            raise EnvelopeError("; ".join([*unstated, _describe(error)])) from None
        if unstated:
            raise EnvelopeError("; ".join(unstated))
        return envelope


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_input=False, include_url=False, include_context=False):
        header = header_for(str(detail["loc"][0])) if detail["loc"] else "headers"
        if detail["type"] == "missing":
            problems.append(f"missing header {header}")
        elif header == CONTENT_TYPE_HEADER:
            problems.append(f"unsupported {CONTENT_TYPE_HEADER}: expected application/json")
        else:
            problems.append(f"invalid header {header}: {detail['msg']}")
    return "; ".join(problems)
