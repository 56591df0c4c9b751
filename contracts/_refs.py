"""Checks that the published tree stands on its own: every ``$ref`` resolves inside it, and
every schema's ``$id`` is the URI its file is published under.

References are resolved as their readers resolve them: in the AsyncAPI document against the
document's own location, in a JSON Schema against its ``$id`` (JSON Schema's rule). A
reference that leaves the tree, names a missing file or a JSON pointer that leads nowhere
is a problem; so is a schema whose ``$id`` does not map onto its own file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

__all__ = ["reference_problems", "resolve_pointer"]

# The tree's own base while resolving the document's relative references; never fetched.
_TREE = "file:///published-tree/"


def resolve_pointer(document: Any, pointer: str) -> bool:
    """Whether the JSON pointer ``pointer`` (RFC 6901, possibly empty) leads somewhere in ``document``."""
    if pointer == "":
        return True
    if not pointer.startswith("/"):
        return False
    node = document
    for raw in pointer[1:].split("/"):
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def reference_problems(
    root: Path, document: Mapping[str, Any], document_name: str, schemas_folder: str, base_uri: str
) -> list[str]:
    """Problems of the tree under ``root``: ``document`` is the AsyncAPI document (as data) at
    ``document_name``; the schemas in ``schemas_folder`` are published under ``base_uri``."""
    problems: list[str] = []
    loaded: dict[str, Any] = {}

    def load(name: str) -> Any:
        if name not in loaded:
            path = root / name
            loaded[name] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        return loaded[name]

    def check(where: str, ref: str, target: str, own: Any) -> None:
        """``target``: ``ref`` made absolute; ``own``: the document it appears in."""
        address, fragment = urldefrag(target)
        if address.startswith(_TREE):
            name = address.removeprefix(_TREE)
        elif address.startswith(base_uri):
            name = f"{schemas_folder}/{address.removeprefix(base_uri)}"
        else:
            problems.append(f"{where}: $ref {ref} points outside the published tree")
            return
        if name in ("", document_name) or name == where:
            referenced = own
        else:
            referenced = load(name)
            if referenced is None:
                problems.append(f"{where}: $ref {ref} names {name}, which does not exist")
                return
        if not resolve_pointer(referenced, fragment):
            problems.append(f"{where}: $ref {ref} has no #{fragment} in {name or document_name}")

    for ref in _refs(document):
        check(document_name, ref, urljoin(_TREE + document_name, ref), document)

    folder = root / schemas_folder
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = f"{schemas_folder}/{path.name}"
        schema = load(name)
        expected_id = base_uri + path.name
        if not isinstance(schema, dict) or schema.get("$id") != expected_id:
            found = schema.get("$id") if isinstance(schema, dict) else None
            problems.append(f"{name}: $id is {found!r}, not {expected_id!r}")
            continue
        for ref in _refs(schema):
            check(name, ref, urljoin(expected_id, ref), schema)
    return problems
