"""A small, deterministic YAML writer for JSON-like data (the AsyncAPI document).

The contracts depend on pydantic only, so partners can regenerate the published documents
without a YAML library. The output is block-style YAML 1.2 that any YAML parser reads back as
the same data: strings are quoted unless they are plain words that no parser could take for a
number, a boolean or null, and multi-line text is a literal block.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

__all__ = ["dump"]

_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$-]*")
_PLAIN_VALUE = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
# Words YAML 1.1 parsers (PyYAML, js-yaml in its compatible modes) read as booleans or null.
_RESERVED = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})
_INDENT = "  "


def dump(data: Mapping[str, object]) -> str:
    """``data`` (dicts, lists, strings, ints, floats, booleans, None) as a YAML document."""
    lines: list[str] = []
    _mapping(data, 0, lines)
    return "\n".join(lines) + "\n"


def _mapping(data: Mapping[str, object], depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    for key, value in data.items():
        head = f"{pad}{_key(key)}:"
        if isinstance(value, Mapping) and value:
            lines.append(head)
            _mapping(value, depth + 1, lines)
        elif isinstance(value, list | tuple) and value:
            lines.append(head)
            _sequence(value, depth + 1, lines)
        elif isinstance(value, str) and _is_block(value):
            lines.append(f"{head} |-")
            lines.extend(f"{pad}{_INDENT}{line}" if line else "" for line in value.split("\n"))
        else:
            lines.append(f"{head} {_scalar(value)}")


def _sequence(items: Sequence[object], depth: int, lines: list[str]) -> None:
    pad = _INDENT * depth
    for item in items:
        if isinstance(item, Mapping) and item:
            nested: list[str] = []
            _mapping(item, depth + 1, nested)
            # The first key goes on the dash's line; the others keep their indentation.
            nested[0] = f"{pad}- {nested[0].lstrip()}"
            lines.extend(nested)
        elif (_is_sequence(item) and item) or (isinstance(item, str) and _is_block(item)):
            raise ValueError("nested sequences and multi-line items are not written")
        else:
            lines.append(f"{pad}- {_scalar(item)}")


def _is_sequence(value: object) -> bool:
    return isinstance(value, list | tuple)


def _is_block(text: str) -> bool:
    """Multi-line text without what a literal block would change: trailing or leading blanks,
    tabs, carriage returns, a final line break."""
    lines = text.split("\n")
    return (
        len(lines) > 1
        and not text.endswith("\n")
        and "\t" not in text
        and "\r" not in text
        and lines[0][:1] not in ("", " ")
        and all(line == line.rstrip() for line in lines)
    )


def _key(key: str) -> str:
    if _PLAIN_KEY.fullmatch(key) and key.lower() not in _RESERVED:
        return key
    return json.dumps(key, ensure_ascii=False)


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{}"  # only empty mappings get here
    if _is_sequence(value):
        return "[]"
    if isinstance(value, str):
        if _PLAIN_VALUE.fullmatch(value) and value.lower() not in _RESERVED:
            return value
        # A JSON string is a valid YAML double-quoted scalar with the same escapes.
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")
