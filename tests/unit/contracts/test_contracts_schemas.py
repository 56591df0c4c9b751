from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contracts import CATALOG, CaseDelivery
from contracts.schemas import json_schemas, main, write_schemas


def objects_in(schema: Any) -> list[dict[str, Any]]:
    """Every model schema (an object with properties) nested anywhere in ``schema``.

    Maps such as ``placeholders`` are objects too, but open by design.
    """
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            found.append(schema)
        for value in schema.values():
            found.extend(objects_in(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(objects_in(value))
    return found


def property_names_in(schema: Any) -> set[str]:
    return {name for obj in objects_in(schema) for name in obj.get("properties", {})}


def test_writes_one_schema_per_catalogue_entry(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path / "schemas")
    assert sorted(path.name for path in paths) == sorted(f"{t}.json" for t in CATALOG)


def test_written_schemas_carry_id_title_and_closed_objects(tmp_path: Path) -> None:
    for path in write_schemas(tmp_path):
        schema = json.loads(path.read_text(encoding="utf-8"))
        contract = CATALOG[path.name.removesuffix(".json")]
        assert schema["$id"] == contract.dataschema()
        assert schema["title"] == contract.__name__
        assert schema["additionalProperties"] is False
        assert all(obj["additionalProperties"] is False for obj in objects_in(schema))


def test_delivery_schema_has_no_vn_anywhere() -> None:
    schema = json_schemas()[CaseDelivery.event_type]
    assert "vn" not in property_names_in(schema)
    assert "vn" not in json.dumps(schema).lower()


def test_move_reported_schema_does_carry_the_vn() -> None:
    schema = json_schemas()["ch.lu.hub.relocation.move-reported.v1"]
    assert "vn" in property_names_in(schema)


def test_command_line_writes_the_schemas(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.json"))) == len(CATALOG)


def test_command_line_explains_its_usage_without_arguments() -> None:
    assert main([]) == 2
