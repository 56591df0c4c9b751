"""The AsyncAPI document and the published tree (docs/partners): generated from the
catalogue, the envelope and the topic naming, committed, and self-contained."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import CATALOG, ArrivalRegistered, Envelope, EnvelopeError
from contracts._headers import header_for
from contracts._refs import reference_problems
from contracts._yaml import dump
from contracts.asyncapi import (
    DOCUMENT_NAME,
    SCHEMAS_FOLDER,
    differences,
    document,
    main,
    published_files,
    write,
)
from contracts.base import SCHEMA_BASE_URI
from contracts.channels import (
    DELIVERY_EVENT_TYPES,
    PARTNER_EVENT_TYPES,
    SLUG_PATTERN,
    delivery_topic,
    ingress_topic,
    partner_slug,
)
from hub.runtime import topics
from hub.security.acls import partner_group as hub_partner_group

ROOT = Path(__file__).resolve().parents[3]
PUBLISHED = ROOT / "docs" / "partners"
PROCESSES = ROOT / "services" / "registry" / "processes"
REGISTRY_MIGRATIONS = ROOT / "services" / "registry" / "migrations"


def test_the_committed_tree_is_what_the_contracts_generate() -> None:
    assert differences(PUBLISHED) == []


def test_the_check_names_a_changed_a_missing_and_a_stale_file(tmp_path: Path) -> None:
    write(tmp_path)
    assert differences(tmp_path) == []
    document_file = tmp_path / DOCUMENT_NAME
    document_file.write_text(document_file.read_text().replace("hub.ingress.", "hub.inbound."))
    arrival = f"{SCHEMAS_FOLDER}/{ArrivalRegistered.event_type}.json"
    (tmp_path / arrival).unlink()
    (tmp_path / SCHEMAS_FOLDER / "ch.lu.hub.relocation.gone.v1.json").write_text("{}")
    assert differences(tmp_path) == [
        f"{DOCUMENT_NAME}: differs from what the contracts generate",
        f"{arrival}: missing",
        f"{SCHEMAS_FOLDER}/ch.lu.hub.relocation.gone.v1.json: no contract has this schema any more",
        f"{DOCUMENT_NAME}: $ref {arrival} names {arrival}, which does not exist",
        f"{SCHEMAS_FOLDER}/ch.lu.hub.relocation.gone.v1.json: $id is None, not "
        f"'{SCHEMA_BASE_URI}ch.lu.hub.relocation.gone.v1.json'",
    ]


def test_the_command_line_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--check"]) == 1
    assert "missing" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 0
    assert main([str(tmp_path), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    write(tmp_path)  # rewriting an up-to-date tree changes nothing
    assert differences(tmp_path) == []


def test_the_yaml_reads_back_as_the_document() -> None:
    assert yaml.safe_load(published_files()[DOCUMENT_NAME]) == document()


@pytest.mark.parametrize(
    "value",
    ["1.0", "true", "no", "null", "#/x", "a: b", "x #y", "{p}", "- a", "", " lead", "trail ",
     "multi\nline", "multi\n\n  indented\nlines", "\nstarts empty", "ends\n", "tab\there", "ünï",
     3, 2.5, True, None, [], {}],
)  # fmt: skip
def test_the_yaml_writer_keeps_every_scalar_as_it_is(value: Any) -> None:
    data = {"key": value, "list": [value, {"inner": value}], "true": {"nested": value}}
    if isinstance(value, str) and "\n" in value:
        data["list"] = [{"inner": value}]
    assert yaml.safe_load(dump(data)) == data


def test_every_schema_id_is_the_dataschema_of_its_events_and_maps_onto_its_file() -> None:
    files = published_files()
    for event_type, contract in CATALOG.items():
        schema = json.loads(files[f"{SCHEMAS_FOLDER}/{event_type}.json"])
        assert schema["$id"] == contract.dataschema() == f"{SCHEMA_BASE_URI}{event_type}.json"
        assert (PUBLISHED / SCHEMAS_FOLDER / schema["$id"].removeprefix(SCHEMA_BASE_URI)).is_file()
    envelope = Envelope.new(
        ArrivalRegistered.model_validate(
            {
                "municipality": {"bfs_number": 1061, "name": "Luzern", "canton": "LU"},
                "registered_on": "2026-12-03",
            }
        ),
        source="urn:ch:lu:hub:partner:CH/MUN/1061/einwohnerdienste",
        business_process_id="eumzug-1",
    )
    assert dict(envelope.to_headers())["ce_dataschema"].decode() == ArrivalRegistered.dataschema()


def test_the_reference_check_finds_references_that_leave_the_tree_or_lead_nowhere(tmp_path: Path) -> None:
    shutil.copytree(PUBLISHED / SCHEMAS_FOLDER, tmp_path / SCHEMAS_FOLDER)
    name = f"{ArrivalRegistered.event_type}.json"
    schema = json.loads((tmp_path / SCHEMAS_FOLDER / name).read_text())
    schema["properties"]["municipality"] = {"$ref": "#/$defs/Nowhere"}
    schema["properties"]["remarks"] = {"$ref": "https://example.org/schemas/remarks.json"}
    schema["properties"]["registered_on"] = {"$ref": "ch.lu.hub.case.rejected.v1.json#/properties/reason"}
    (tmp_path / SCHEMAS_FOLDER / name).write_text(json.dumps(schema))
    doc = {
        "a": {"$ref": f"{SCHEMAS_FOLDER}/{name}"},
        "b": {"$ref": "#/components/none"},
        "c": {"$ref": "../outside.json"},
        "d": {"$ref": f"{SCHEMAS_FOLDER}/missing.json"},
    }
    problems = reference_problems(tmp_path, doc, DOCUMENT_NAME, SCHEMAS_FOLDER, SCHEMA_BASE_URI)
    assert problems == [
        f"{DOCUMENT_NAME}: $ref #/components/none has no #/components/none in {DOCUMENT_NAME}",
        f"{DOCUMENT_NAME}: $ref ../outside.json points outside the published tree",
        f"{DOCUMENT_NAME}: $ref {SCHEMAS_FOLDER}/missing.json names {SCHEMAS_FOLDER}/missing.json, "
        "which does not exist",
        f"{SCHEMAS_FOLDER}/{name}: $ref #/$defs/Nowhere has no #/$defs/Nowhere in {SCHEMAS_FOLDER}/{name}",
        f"{SCHEMAS_FOLDER}/{name}: $ref https://example.org/schemas/remarks.json points outside the "
        "published tree",
    ]  # the reference to another published schema, by its relative name, resolves


def _messages(channel: str) -> set[str]:
    return {ref["$ref"].rsplit("/", 1)[-1] for ref in document()["channels"][channel]["messages"].values()}


def test_channels_follow_the_topic_naming_and_carry_the_partner_surface() -> None:
    doc = document()
    assert doc["asyncapi"].startswith("3.")
    assert doc["channels"]["ingress"]["address"] == topics.INGRESS_PREFIX + "{partner}"
    assert doc["channels"]["delivery"]["address"] == topics.DELIVERY_PREFIX + "{partner}"
    assert _messages("ingress") == set(PARTNER_EVENT_TYPES)
    assert _messages("delivery") == set(DELIVERY_EVENT_TYPES)
    operations = doc["operations"]
    assert (operations["publishEvent"]["action"], operations["publishEvent"]["channel"]) == (
        "send", {"$ref": "#/channels/ingress"},
    )  # fmt: skip
    assert (operations["receiveDeliveries"]["action"], operations["receiveDeliveries"]["channel"]) == (
        "receive", {"$ref": "#/channels/delivery"},
    )  # fmt: skip
    assert "slug" in doc["components"]["parameters"]["partner"]["description"]
    key = doc["components"]["messageBindings"]["caseKey"]["kafka"]["key"]
    assert "ce_businessprocessid" in key["description"]
    for event_type, message in doc["components"]["messages"].items():
        assert message["payload"] == {"$ref": f"{SCHEMAS_FOLDER}/{event_type}.json"}
        assert message["bindings"] == {"$ref": "#/components/messageBindings/caseKey"}
        constants = message["headers"]["allOf"][1]["properties"]
        assert constants["ce_type"]["const"] == event_type
        assert constants["ce_dataschema"]["const"] == CATALOG[event_type].dataschema()


@pytest.mark.parametrize("headers", ["ingressHeaders", "deliveryHeaders"])
def test_every_envelope_attribute_is_a_described_header(headers: str) -> None:
    schema = document()["components"]["schemas"][headers]
    expected = {header_for(name) for name in Envelope.model_fields} | {"traceparent", "tracestate"}
    assert set(schema["properties"]) == expected
    assert {"ce_sigkeyid", "ce_signature", "content-type", "ce_specversion", "ce_businessprocessid"} <= set(
        schema["required"]
    )
    assert "ce_subject" not in schema["required"]
    assert all(prop["type"] == "string" and prop["description"] for prop in schema["properties"].values())
    assert schema["properties"]["ce_testdelivery"]["enum"] == ["true", "false"]
    time_pattern = re.compile(schema["properties"]["ce_time"]["pattern"])
    assert time_pattern.fullmatch("2026-12-03T07:23:44.123Z")
    assert not time_pattern.fullmatch("2026-12-03T07:23:44")


def test_the_source_header_says_who_sends() -> None:
    schemas = document()["components"]["schemas"]
    ingress = re.compile(schemas["ingressHeaders"]["properties"]["ce_source"]["pattern"])
    assert ingress.fullmatch("urn:ch:lu:hub:partner:CH/MUN/1061/einwohnerdienste")
    assert not ingress.fullmatch("urn:ch:lu:hub:service:registry")
    assert schemas["deliveryHeaders"]["properties"]["ce_source"]["const"] == "urn:ch:lu:hub:service:registry"


@pytest.mark.parametrize(
    "partner_id",
    ["CH/MUN/1061/einwohnerdienste", "CH/CAN/LU/steuerverwaltung", "ch/com/Firma_AG/edv--x", "CH/FED/x.y/z"],
)
def test_the_topic_naming_is_the_hubs(partner_id: str) -> None:
    assert partner_slug(partner_id) == topics.partner_slug(partner_id)
    assert re.fullmatch(SLUG_PATTERN, partner_slug(partner_id))
    assert ingress_topic(partner_id) == topics.ingress_topic(partner_id)
    assert delivery_topic(partner_id) == topics.delivery_topic(partner_id)
    assert document()["operations"]["receiveDeliveries"]["bindings"]["kafka"]["groupId"]["pattern"]
    assert re.fullmatch(
        document()["operations"]["receiveDeliveries"]["bindings"]["kafka"]["groupId"]["pattern"],
        hub_partner_group(partner_id),
    )


def _catalogue_publishers() -> dict[str, set[str]]:
    """Event type -> the partner roles the registry's catalogue lets publish it."""
    row = re.compile(r"\(\s*'(ch\.lu\.hub\.[a-z0-9.-]+)',\s*'[^']*',\s*\d+,\s*'\{([^}]*)\}'")
    found: dict[str, set[str]] = {}
    for migration in sorted(REGISTRY_MIGRATIONS.glob("*.sql")):
        for event_type, roles in row.findall(migration.read_text()):
            found[event_type] = {role for role in roles.split(",") if role}
    return found


def test_the_ingress_messages_are_what_the_catalogue_lets_partners_publish() -> None:
    publishers = _catalogue_publishers()
    assert set(publishers) == set(CATALOG)  # every catalogue row was read
    assert {t for t, roles in publishers.items() if roles} == set(PARTNER_EVENT_TYPES)


def test_every_event_a_process_definition_expects_from_a_partner_is_an_ingress_message() -> None:
    expected: set[str] = set()
    for path in PROCESSES.glob("*.json"):
        process = json.loads(path.read_text())
        expected.add(process["opened_by"]["event_type"])
        expected |= {milestone["event_type"] for milestone in process["milestones"]}
    assert expected
    assert expected <= set(PARTNER_EVENT_TYPES)


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [("application/json", True), ("Application/JSON; charset=utf-8", True), ("application/jsonx", False),
     ("text/plain", False)],
)  # fmt: skip
def test_header_patterns_are_portable_and_mean_what_the_envelope_accepts(
    content_type: str, accepted: bool
) -> None:
    """JSON Schema patterns are ECMA-262: Python's inline ``(?i)`` is spelt out as letter classes."""
    pattern = document()["components"]["schemas"]["ingressHeaders"]["properties"]["content-type"]["pattern"]
    assert not pattern.startswith("(?")
    assert bool(re.search(pattern, content_type)) is accepted
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"a.b.v1"),
               ("ce_time", b"2026-12-03T07:23:44Z"), ("ce_businessprocessid", b"c"),
               ("content-type", content_type.encode())]  # fmt: skip
    try:
        Envelope.from_headers(headers)
    except EnvelopeError:
        assert not accepted
    else:
        assert accepted


def test_a_header_required_on_the_wire_is_not_described_as_defaulted() -> None:
    properties = document()["components"]["schemas"]["ingressHeaders"]["properties"]
    assert "Absent" not in properties["ce_specversion"]["description"]
    assert "Absent" not in properties["content-type"]["description"]
    assert properties["ce_action"]["description"].endswith("Absent: `new`.")
    assert properties["ce_testdelivery"]["description"].endswith("Absent: `false`.")


def test_the_generator_and_the_gate_need_nothing_but_the_contracts_dependencies() -> None:
    """Partners regenerate and check the published tree with pydantic alone: no YAML library,
    nothing of the hub's runtime."""
    script = (
        "import sys, contracts.asyncapi, contracts.compat, contracts.channels; "
        "contracts.asyncapi.published_files(); "
        "print(','.join(m for m in ('yaml', 'faststream', 'aiokafka', 'asyncpg', 'hub') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
