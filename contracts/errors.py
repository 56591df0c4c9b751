"""The exception tree of the contracts package.

Every error a partner or a hub service can get from this package is a
``ContractError``, so a consumer can dead-letter on one class.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = [
    "ContractError",
    "ContractViolation",
    "EnvelopeError",
    "UnknownEventType",
    "describe_errors",
]


class ContractError(Exception):
    """Root of every error raised by ``contracts``."""


class EnvelopeError(ContractError):
    """The CloudEvents headers are missing, invalid, or the content type is wrong."""


class UnknownEventType(ContractError):
    """The event type (or its version) is not in the catalogue."""


class ContractViolation(ContractError):
    """The event data does not validate against its contract.

    The message names locations and reasons only. Event data carries personal
    data (AHVN13, names, addresses) and error messages end up in logs and
    dead-letter headers, so the offending input values are never included.
    """

    def __init__(self, message: str, errors: Sequence[ErrorDetails] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[ErrorDetails, ...] = tuple(errors)

    @classmethod
    def from_validation_error(cls, event_type: str, error: ValidationError) -> ContractViolation:
        details = error.errors(include_input=False, include_url=False, include_context=False)
        return cls(f"invalid data for {event_type}: {describe_errors(details)}", details)


def describe_errors(details: Sequence[ErrorDetails]) -> str:
    """``loc: msg`` pairs of pydantic errors, without input values."""
    parts = []
    for detail in details:
        location = ".".join(str(part) for part in detail["loc"]) or "<root>"
        parts.append(f"{location}: {detail['msg']}")
    return "; ".join(parts)
