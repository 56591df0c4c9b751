"""The AsyncAPI 3 document of the partner interface, and the published tree around it.

Generated from the catalogue (``contracts.catalog``), the envelope (``contracts.envelope``:
every ``ce_*`` header, ``content-type``, the signature headers) and the topic naming
(``contracts.channels``), so none of them can drift from what the hub does. The tree it
writes, committed as ``docs/partners/``::

    asyncapi.yaml                  this document; payloads are $refs into schemas/
    schemas/<event type>.json      the JSON Schema of every contract in the catalogue

A schema's ``$id`` is ``https://hub.stadtluzern.ch/schemas/<event type>.json``
(``contracts.base.SCHEMA_BASE_URI``), and an event's ``ce_dataschema`` names the same URI:
published at that base, the folder ``schemas/`` answers every id.

    python -m contracts.asyncapi DIR            write the tree into DIR
    python -m contracts.asyncapi DIR --check    exit 1, naming each file, unless DIR holds
                                                exactly what would be written, with every
                                                $ref resolving inside DIR
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts import _yaml
from contracts._headers import _RFC3339, header_for
from contracts._refs import reference_problems
from contracts.base import SCHEMA_BASE_URI, Contract
from contracts.catalog import CATALOG
from contracts.channels import (
    DELIVERABLE_EVENT_TYPES,
    DELIVERY_EVENT_TYPES,
    DELIVERY_PREFIX,
    HUB_DELIVERY_SOURCE,
    INGRESS_PREFIX,
    PARTNER_EVENT_TYPES,
    PARTNER_GROUP_PREFIX,
    PARTNER_SOURCE_PREFIX,
)
from contracts.ech import ParticipantIdStr
from contracts.envelope import Envelope
from contracts.schemas import json_schemas

__all__ = [
    "DOCUMENT_NAME",
    "SCHEMAS_FOLDER",
    "differences",
    "document",
    "header_schema",
    "main",
    "published_files",
    "write",
]

ASYNCAPI_VERSION = "3.1.0"
DOCUMENT_VERSION = "1.0.0"
"""The interface's version (docs/partners/versioning.md): major when a published event type
version is retired, minor when one is added, patch for documentation only."""
DOCUMENT_NAME = "asyncapi.yaml"
SCHEMAS_FOLDER = "schemas"
KAFKA_BINDING_VERSION = "0.5.0"
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
PARTICIPANT_ID_PATTERN: str = TypeAdapter(ParticipantIdStr).json_schema()["pattern"]

# Required on the wire although the envelope model defaults them: CloudEvents requires
# ``specversion``, the hub requires ``content-type`` (``Envelope.from_headers``), and a hub with
# ``HUB_REQUIRE_SIGNATURES`` (the default) refuses an unsigned partner event, while it signs
# every delivery itself.
_REQUIRED_ON_THE_WIRE = ("specversion", "datacontenttype", "sigkeyid", "signature")

_HEADER_NOTES = {
    "specversion": "CloudEvents version; always `1.0`.",
    "id": "Unique per source: `ce_source` + `ce_id` is the dedup key. Send a repeat with the same id.",
    "source": "Who sent the event.",
    "type": "The event type, versioned; names the payload's schema.",
    "time": "RFC 3339 with a time zone offset or `Z`, any number of fraction digits. The hub refuses "
    "an event older than 6 hours or more than 5 minutes ahead (its defaults).",
    "subject": "Optional subject of the event.",
    "dataschema": "The `$id` of the payload's JSON Schema. The hub does not read it.",
    "datacontenttype": "The payload's media type: `application/json` (parameters such as "
    "`charset` allowed). The CloudEvents attribute `datacontenttype` travels as this header.",
    "businessprocessid": "eCH-0058 business process id: the case id, the same across agencies. "
    "The record's Kafka key MUST equal it.",
    "referenceid": "The `ce_id` of the event this one answers (eCH-0058 reference message id).",
    "action": "eCH-0058 action, as a word.",
    "testdelivery": "eCH-0058 test delivery flag: `true` for a test case.",
    "sigkeyid": "The id of the Ed25519 key that signed the record; a signed header itself.",
    "signature": "Ed25519 signature over the signed form, standard base64 (docs/partners/signing.md). "
    "The only `ce_` header the signature does not cover.",
}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional attribute is an absent header, never a null one: drop the null branch."""
    branches = schema.get("anyOf")
    if branches is None:
        return schema
    [present] = [branch for branch in branches if branch.get("type") != "null"]
    return {**{k: v for k, v in schema.items() if k != "anyOf"}, **present}


def _portable(pattern: str) -> str:
    """``pattern`` as an ECMA-262 regular expression, the dialect JSON Schema prescribes: a
    leading ``(?i)`` (Python's flag, unknown there) becomes a class of both cases per letter."""
    if not pattern.startswith("(?i)"):
        return pattern
    body = pattern.removeprefix("(?i)")
    if "[" in body:
        raise ValueError(f"cannot make {pattern!r} case-insensitive without (?i)")
    out, escaped = [], False
    for char in body:
        out.append(f"[{char.upper()}{char.lower()}]" if char.isalpha() and not escaped else char)
        escaped = char == "\\" and not escaped
    return "".join(out)


def _header_property(name: str, model_property: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    schema = _without_null(model_property)
    if "$ref" in schema:
        schema = {
            **defs[schema["$ref"].rsplit("/", 1)[-1]],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    kept: dict[str, Any] = {
        k: schema[k] for k in ("const", "enum", "pattern", "minLength", "maxLength") if k in schema
    }
    if "pattern" in kept:
        kept["pattern"] = _portable(kept["pattern"])
    if schema.get("type") == "boolean":
        kept["enum"] = ["true", "false"]
    if schema.get("format") == "date-time":
        kept["pattern"] = _RFC3339.pattern
    if "default" in schema and schema["default"] is not None and name not in _REQUIRED_ON_THE_WIRE:
        default = schema["default"]
        written = str(default).lower() if isinstance(default, bool) else default
        kept["description"] = f"{_HEADER_NOTES[name]} Absent: `{written}`."
    else:
        kept["description"] = _HEADER_NOTES[name]
    return {"type": "string", **kept}


def header_schema(*, source: dict[str, Any]) -> dict[str, Any]:
    """The headers of a record on a partner channel: every envelope attribute as its Kafka
    header (values are UTF-8 text), the W3C trace context; ``source`` says who sends."""
    model = Envelope.model_json_schema()
    properties: dict[str, Any] = {}
    for name in Envelope.model_fields:
        properties[header_for(name)] = _header_property(
            name, model["properties"][name], model.get("$defs", {})
        )
    properties[header_for("source")] = {**properties[header_for("source")], **source}
    properties["traceparent"] = {
        "type": "string",
        "pattern": TRACEPARENT_PATTERN,
        "description": "W3C trace context; not signed. An answer to a delivery MUST carry the "
        "delivery's `traceparent` (or a child of it), so the case keeps one trace.",
    }
    properties["tracestate"] = {"type": "string", "description": "W3C trace state; not signed."}
    required = [header_for(name) for name in (*model["required"], *_REQUIRED_ON_THE_WIRE)]
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(set(required), key=required.index),
        # Other headers may travel (CloudEvents extensions the hub does not know, which are
        # signed like any ce_ header); a ce_ name must be a CloudEvents attribute name.
        "additionalProperties": {"type": "string"},
        "propertyNames": {"not": {"pattern": "^ce_(?![a-z0-9]+$)"}},
    }


def _summary(contract: type[Contract]) -> str | None:
    doc = vars(contract).get("__doc__")
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ") if doc else None


def _message(event_type: str, headers_ref: str, extra_description: str = "") -> dict[str, Any]:
    contract = CATALOG[event_type]
    message: dict[str, Any] = {
        "name": contract.__name__,
        "title": event_type,
    }
    summary = _summary(contract)
    if summary:
        message["summary"] = summary
    message["description"] = (
        f"`ce_type: {event_type}`; payload schema `{contract.dataschema()}` "
        f"([{SCHEMAS_FOLDER}/{event_type}.json]({SCHEMAS_FOLDER}/{event_type}.json)).{extra_description}"
    )
    message["contentType"] = "application/json"
    message["headers"] = {
        "allOf": [
            {"$ref": headers_ref},
            {
                "type": "object",
                "properties": {
                    "ce_type": {"type": "string", "const": event_type},
                    "ce_dataschema": {"type": "string", "const": contract.dataschema()},
                },
            },
        ]
    }
    message["payload"] = {"$ref": f"{SCHEMAS_FOLDER}/{event_type}.json"}
    message["correlationId"] = {"$ref": "#/components/correlationIds/case"}
    message["bindings"] = {"$ref": "#/components/messageBindings/caseKey"}
    return message


def _delivery_note() -> str:
    listed = "\n".join(f"- [`{t}`]({SCHEMAS_FOLDER}/{t}.json)" for t in DELIVERABLE_EVENT_TYPES)
    return (
        "\n\nA delivery carries one event of a case the partner is a party to (or whose type its "
        "subscription spans for all cases): `event_type_delivered` names its type, `data` holds that "
        "event's data reduced to the fields the subscription allows, `subject` the person as the "
        "partner's sector sees them (a sector pseudonym, never the AHVN13). The types a delivery "
        f"may carry:\n\n{listed}\n\n"
        "Before using a delivery, a partner MUST verify the hub's signature over the record as "
        "received, check that the Kafka key equals `ce_businessprocessid` and that `recipient` is "
        "its own partner id, and drop a repeated `ce_id` (docs/partners/signing.md, section 3)."
    )


def _channel_messages(event_types: Sequence[str]) -> dict[str, Any]:
    return {t: {"$ref": f"#/components/messages/{t}"} for t in event_types}


def document() -> dict[str, Any]:
    """The AsyncAPI document, as data."""
    ingress_headers = "#/components/schemas/ingressHeaders"
    delivery_headers = "#/components/schemas/deliveryHeaders"
    messages = {t: _message(t, ingress_headers) for t in PARTNER_EVENT_TYPES}
    messages |= {t: _message(t, delivery_headers, _delivery_note()) for t in DELIVERY_EVENT_TYPES}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Lucerne cross-agency service hub: partner interface",
            "version": DOCUMENT_VERSION,
            "description": (
                "What a partner agency's system sends to the hub and receives from it over Kafka.\n"
                "\n"
                "Every record is a CloudEvent in Kafka binary mode: the attributes are `ce_*` headers, "
                "the data is the JSON record value, `content-type` is `application/json`, and the Kafka "
                "key is the case id (`ce_businessprocessid`), which keeps a case's events in order.\n"
                "\n"
                "Every record is signed with Ed25519 over its headers and value as sent "
                "(`ce_sigkeyid`, `ce_signature`): a partner signs with its registered key, the hub "
                "with its delivery key. The rules and test vectors: [signing.md](signing.md).\n"
                "\n"
                "Payload schemas are closed (`additionalProperties: false`); how they change, and "
                "for how long an old version lives: [versioning.md](versioning.md). Schemas: "
                f"[{SCHEMAS_FOLDER}/]({SCHEMAS_FOLDER}/), each `$id` under `{SCHEMA_BASE_URI}`."
            ),
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "hub": {
                "host": "{bootstrap}",
                "protocol": "kafka-secure",
                "description": "The hub's Kafka cluster: SASL_SSL with SCRAM-SHA-512, or mutual TLS. "
                "The operators give each partner its bootstrap address, user and CA.",
                "variables": {
                    "bootstrap": {
                        "description": "bootstrap server, host:port, given at onboarding",
                        "examples": ["kafka.hub.stadtluzern.ch:9093"],
                    }
                },
                "security": [
                    {"$ref": "#/components/securitySchemes/scram"},
                    {"$ref": "#/components/securitySchemes/mutualTls"},
                ],
                "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION}},
            }
        },
        "channels": {
            "ingress": {
                "address": INGRESS_PREFIX + "{partner}",
                "title": "A partner's ingress topic",
                "description": (
                    "Each partner publishes on its own ingress topic, and only there: Kafka ACLs let "
                    "it write this topic only, and the hub refuses an event on it whose `ce_source` "
                    f"is not `{PARTNER_SOURCE_PREFIX}<the topic's partner id>`. An event the hub "
                    "refuses goes to `hub.ingress-dlt` with its reason and is listed by "
                    "`hub audit refusals`."
                ),
                "parameters": {"partner": {"$ref": "#/components/parameters/partner"}},
                "messages": _channel_messages(PARTNER_EVENT_TYPES),
                "bindings": {"$ref": "#/components/channelBindings/partnerTopic"},
            },
            "delivery": {
                "address": DELIVERY_PREFIX + "{partner}",
                "title": "A partner's delivery topic",
                "description": (
                    "What the hub delivers to one partner: the events of its cases, minimised. Only "
                    f"this partner may read it, with the consumer group `{PARTNER_GROUP_PREFIX}<partner id>`."
                ),
                "parameters": {"partner": {"$ref": "#/components/parameters/partner"}},
                "messages": _channel_messages(DELIVERY_EVENT_TYPES),
                "bindings": {"$ref": "#/components/channelBindings/partnerTopic"},
            },
        },
        "operations": {
            "publishEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/ingress"},
                "title": "Publish an event of a case",
                "summary": "The partner opens a case, reaches a milestone, rejects a case or asks the "
                "citizen for something.",
                "description": (
                    "Sign the record (docs/partners/signing.md), key it by the case id, send it with "
                    "`acks=all` and retry until the broker acknowledges it, with the same `ce_id`: the "
                    "hub drops a repeat. Which role may send which type, and which party slot a "
                    "milestone counts for, is the catalogue's and the case type's (`hub catalog list`). "
                    "An answer to a delivery carries its `traceparent`, and its `ce_referenceid` names "
                    "the delivery's `ce_id`."
                ),
                "messages": [{"$ref": f"#/channels/ingress/messages/{t}"} for t in PARTNER_EVENT_TYPES],
                "bindings": {
                    "kafka": {
                        "clientId": {"type": "string", "description": "any; the hub does not read it"},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            },
            "receiveDeliveries": {
                "action": "receive",
                "channel": {"$ref": "#/channels/delivery"},
                "title": "Receive the hub's deliveries",
                "summary": "The partner reads the deliveries of its cases.",
                "description": (
                    "Verify each record before parsing it, commit its offset once it is handled, and "
                    "drop a `ce_id` already handled: after a rebalance or a restart, Kafka may deliver "
                    "a record again."
                ),
                "messages": [{"$ref": f"#/channels/delivery/messages/{t}"} for t in DELIVERY_EVENT_TYPES],
                "bindings": {
                    "kafka": {
                        "groupId": {
                            "type": "string",
                            "pattern": "^" + PARTNER_GROUP_PREFIX.replace(".", r"\.") + ".+$",
                            "description": f"`{PARTNER_GROUP_PREFIX}` and the partner id, e.g. "
                            f"`{PARTNER_GROUP_PREFIX}CH/MUN/1061/einwohnerdienste`: the ACLs grant no "
                            "other group",
                        },
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            },
        },
        "components": {
            "parameters": {
                "partner": {
                    "description": (
                        "The partner's slug: its partner id (X-Road style, "
                        "`<instance>/<member class>/<member code>/<subsystem>`) in lower case, with "
                        "every run of characters other than `a-z`, `0-9` and `-` turned into one dot "
                        "and none at either end. `CH/MUN/1061/einwohnerdienste` has the slug "
                        "`ch.mun.1061.einwohnerdienste`."
                    ),
                    "examples": ["ch.mun.1061.einwohnerdienste", "ch.can.lu.steuerverwaltung"],
                }
            },
            "schemas": {
                "ingressHeaders": header_schema(
                    source={
                        "pattern": "^" + PARTNER_SOURCE_PREFIX + PARTICIPANT_ID_PATTERN.removeprefix("^"),
                        "description": f"`{PARTNER_SOURCE_PREFIX}` and the sender's partner id, exactly "
                        "as registered; it must be the partner whose ingress topic carries the record.",
                    }
                ),
                "deliveryHeaders": header_schema(
                    source={
                        "const": HUB_DELIVERY_SOURCE,
                        "description": "The hub's registry, which publishes every delivery.",
                    }
                ),
            },
            "messages": messages,
            "correlationIds": {
                "case": {
                    "description": "The case id, the same on every event of a case and for every agency.",
                    "location": "$message.header#/ce_businessprocessid",
                }
            },
            "messageBindings": {
                "caseKey": {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 128,
                            "description": "The case id: equal to the `ce_businessprocessid` header. A "
                            "delivery keyed otherwise is not the hub's (a copy, re-keyed): refuse it.",
                        },
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                }
            },
            "channelBindings": {
                "partnerTopic": {
                    "kafka": {
                        "topicConfiguration": {"cleanup.policy": ["delete"]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                }
            },
            "securitySchemes": {
                "scram": {"type": "scramSha512", "description": "SASL_SSL with SCRAM-SHA-512"},
                "mutualTls": {"type": "X509", "description": "SSL with a client certificate"},
            },
        },
    }


def _json_text(schema: dict[str, Any]) -> str:
    # Sorted keys and a trailing newline keep the files diff-friendly in review.
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def published_files() -> dict[str, str]:
    """Path inside the published tree -> the file's text."""
    files = {DOCUMENT_NAME: _yaml.dump(document())}
    for event_type, schema in json_schemas().items():
        files[f"{SCHEMAS_FOLDER}/{event_type}.json"] = _json_text(schema)
    return files


def _stale(root: Path, files: dict[str, str]) -> list[str]:
    folder = root / SCHEMAS_FOLDER
    found = sorted(f"{SCHEMAS_FOLDER}/{p.name}" for p in folder.glob("*.json")) if folder.is_dir() else []
    return [name for name in found if name not in files]


def write(root: Path) -> list[Path]:
    """Write the tree into ``root``; schema files of types no longer in the catalogue go."""
    files = published_files()
    for name in _stale(root, files):
        (root / name).unlink()
    written = []
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(root: Path) -> list[str]:
    """What differs between ``root`` and the tree that would be written, one line each, and
    every ``$ref`` or ``$id`` in ``root`` that does not resolve inside it; empty if none."""
    files = published_files()
    problems = []
    for name, text in files.items():
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs from what the contracts generate")
    problems += [f"{name}: no contract has this schema any more" for name in _stale(root, files)]
    problems += reference_problems(root, document(), DOCUMENT_NAME, SCHEMAS_FOLDER, SCHEMA_BASE_URI)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.asyncapi",
        description="Write (or check) the AsyncAPI document and the JSON Schemas partners get.",
    )
    parser.add_argument("directory", type=Path, help="the published tree, e.g. docs/partners")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the directory is not up to date"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.directory)
        for problem in problems:
            print(f"{args.directory}/{problem}", file=sys.stderr)
        if problems:
            print(
                f"{len(problems)} problem(s); regenerate with: python -m contracts.asyncapi {args.directory}",
                file=sys.stderr,
            )
            return 1
        print(f"{args.directory}: AsyncAPI document and {len(CATALOG)} schemas up to date")
        return 0
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
