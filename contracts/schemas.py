"""JSON Schemas of every contract, for partners who do not use Python.

Run ``python -m contracts.schemas OUTPUT_DIR`` to write one file per event type.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.catalog import CATALOG

__all__ = ["json_schemas", "write_schemas"]

_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schemas() -> dict[str, dict[str, Any]]:
    """Event type -> JSON Schema of its data, with ``$id`` = the dataschema URI."""
    schemas: dict[str, dict[str, Any]] = {}
    for event_type, contract in sorted(CATALOG.items()):
        schema = contract.model_json_schema()
        schemas[event_type] = {
            "$schema": _DIALECT,
            "$id": contract.dataschema(),
            **schema,
            "title": contract.__name__,
        }
    return schemas


def write_schemas(directory: Path) -> list[Path]:
    """Write ``<event_type>.json`` per contract into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in json_schemas().items():
        path = directory / f"{event_type}.json"
        # Sorted keys and a trailing newline keep the files diff-friendly in review.
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m contracts.schemas OUTPUT_DIR", file=sys.stderr)
        return 2
    for path in write_schemas(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
