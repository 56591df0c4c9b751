"""AHVN13, the Swiss social security number (eCH-0044 ``vn``).

Error messages never repeat the number: it identifies a person, and
validation errors end up in logs and dead-letter headers.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

__all__ = ["Ahvn13", "ahvn13_check_digit", "is_valid_ahvn13"]

_AHVN13_DOTTED = re.compile(r"756\.[0-9]{4}\.[0-9]{4}\.[0-9]{2}")


def ahvn13_check_digit(first12: str) -> int:
    """EAN-13 check digit: weights 1, 3, 1, 3 ... from the left."""
    if len(first12) != 12 or not first12.isascii() or not first12.isdigit():
        raise ValueError("expected exactly 12 digits")
    total = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(first12))
    return (10 - total % 10) % 10


def _ahvn13_problem(value: str) -> str | None:
    if not value.isascii() or not value.isdigit() or len(value) != 13:
        return "AHVN13 must be 13 digits (dots allowed as 756.dddd.dddd.dd)"
    if not value.startswith("756"):
        return "AHVN13 must start with 756"
    if ahvn13_check_digit(value[:12]) != int(value[12]):
        return "AHVN13 check digit is wrong"
    return None


def _normalise_ahvn13(value: str) -> str:
    return value.replace(".", "") if _AHVN13_DOTTED.fullmatch(value) else value


def is_valid_ahvn13(s: str) -> bool:
    """True for a valid AHVN13, with or without the usual dots."""
    return _ahvn13_problem(_normalise_ahvn13(s)) is None


def _validate_ahvn13(value: str) -> str:
    digits = _normalise_ahvn13(value)
    problem = _ahvn13_problem(digits)
    if problem is not None:
        raise ValueError(problem)
    return digits


Ahvn13 = Annotated[
    str,
    AfterValidator(_validate_ahvn13),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^756([0-9]{10}|\.[0-9]{4}\.[0-9]{4}\.[0-9]{2})$",
            "description": "AHVN13 with EAN-13 check digit; sent as 13 digits",
        }
    ),
]
"""Swiss social security number, normalised to 13 digits."""
