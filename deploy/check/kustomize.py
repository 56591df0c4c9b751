"""A small Kustomize renderer: the features the hub's manifests use, and no others.

``kubectl kustomize`` needs a binary this project cannot fetch, so ``make deploy-check`` renders
with this module instead. It implements, with Kustomize's semantics:

* ``resources``: YAML files and directories holding a ``kustomization.yaml`` (bases), in order;
* ``namespace`` (namespaced kinds only), ``labels`` (``pairs``, ``includeSelectors``,
  ``includeTemplates``), ``images`` (``newName``, ``newTag``, ``digest``), ``replicas``;
* ``configMapGenerator`` / ``secretGenerator`` with ``files``, ``literals``, ``options`` and
  ``generatorOptions``; name suffix hashes are not implemented, so every generator must disable
  them (``disableNameSuffixHash: true``), otherwise rendering fails rather than differ from kubectl;
* ``patches`` (file or inline; a strategic-merge patch or a JSON 6902 list; ``target`` with
  ``kind``, ``name``, ``labelSelector``). Strategic merge here merges maps, merges lists of maps
  by their ``name`` key (containers, env, volumes, volumeMounts, ports, ...) and replaces any
  other list; ``$patch: delete`` removes a map or a named list item;
* ``replacements`` (``source`` kind/name/fieldPath, ``targets`` with ``select``, ``reject``,
  ``fieldPaths`` and ``options.delimiter`` / ``index`` / ``create``);
* objects annotated ``config.kubernetes.io/local-config: "true"`` are dropped from the output
  after the replacements ran (a source of values that is not deployed).

Anything else in a kustomization is an error, so a manifest never silently means something
else here than in ``kubectl kustomize``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
LOCAL_CONFIG = "config.kubernetes.io/local-config"
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "namespace",
    "labels",
    "images",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "patches",
    "replacements",
}
# Kinds without a namespace (those a namespace transformer must leave alone).
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "IngressClass",
    "RuntimeClass",
    "ClusterIssuer",
}
# Where pod templates' label maps live, for labels with includeTemplates.
TEMPLATE_PATHS = (("spec", "template"), ("spec", "jobTemplate", "spec", "template"))
SELECTOR_PATHS = (("spec", "selector", "matchLabels"), ("spec", "selector"))


class KustomizeError(Exception):
    """The kustomization asks for something this renderer does not do, or is inconsistent."""


def build(directory: Path) -> list[Obj]:
    """The objects ``kubectl kustomize DIRECTORY`` would print, in resource order."""
    objects = _build(directory.resolve(), stack=())
    return [o for o in objects if _annotations(o).get(LOCAL_CONFIG) != "true"]


def render(directory: Path) -> str:
    return yaml.safe_dump_all(build(directory), sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------------------- loading
def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise KustomizeError(f"{directory}: no kustomization.yaml")


def _load_documents(path: Path) -> list[Obj]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as error:
        raise KustomizeError(f"{path}: not YAML: {error}") from error
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
            raise KustomizeError(f"{path}: every document must be an object with apiVersion and kind")
        if document["kind"] == "List":
            raise KustomizeError(f"{path}: kind List is not supported; write the items as documents")
    return documents


def _inside(root: Path, path: Path, what: str) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise KustomizeError(f"{what} {path} is outside the kustomization root {root}")
    return resolved


def _build(directory: Path, stack: tuple[Path, ...]) -> list[Obj]:
    if directory in stack:
        raise KustomizeError(f"{directory}: kustomizations include each other in a cycle")
    file = _kustomization_file(directory)
    spec = yaml.safe_load(file.read_text()) or {}
    unknown = set(spec) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{file}: unsupported fields {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in spec.get("resources") or []:
        target = directory / entry
        if target.is_dir():
            objects += _build(target.resolve(), (*stack, directory))
        elif target.is_file():
            objects += _load_documents(_inside(directory, target, "resource"))
        else:
            raise KustomizeError(f"{file}: resource {entry!r} does not exist")
    options = spec.get("generatorOptions") or {}
    for generator in spec.get("configMapGenerator") or []:
        objects.append(_generate(directory, file, "ConfigMap", generator, options))
    for generator in spec.get("secretGenerator") or []:
        objects.append(_generate(directory, file, "Secret", generator, options))
    _check_unique(objects, file)
    # Kustomize's order: patches, then namespace, labels, images, replicas; replacements last.
    for patch in spec.get("patches") or []:
        _apply_patch(directory, file, objects, patch)
    if "namespace" in spec:
        for o in objects:
            if o["kind"] not in CLUSTER_SCOPED:
                o.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for label in spec.get("labels") or []:
        _apply_labels(objects, label)
    for image in spec.get("images") or []:
        _apply_image(objects, image)
    for replica in spec.get("replicas") or []:
        _apply_replicas(objects, replica, file)
    for replacement in spec.get("replacements") or []:
        _apply_replacement(objects, replacement, file)
    return objects


def _check_unique(objects: list[Obj], file: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for o in objects:
        key = (o["kind"], _meta(o).get("namespace", ""), _meta(o).get("name", ""))
        if key in seen:
            raise KustomizeError(f"{file}: {key[0]} {key[2]!r} is defined twice")
        seen.add(key)


def _meta(o: Obj) -> Obj:
    metadata = o.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _annotations(o: Obj) -> Obj:
    annotations = _meta(o).get("annotations")
    return annotations if isinstance(annotations, dict) else {}


# ------------------------------------------------------------------------------------ generators
def _generate(directory: Path, file: Path, kind: str, generator: Obj, options: Obj) -> Obj:
    merged = {**options, **(generator.get("options") or {})}
    if not merged.get("disableNameSuffixHash"):
        raise KustomizeError(
            f"{file}: {kind} generator {generator.get('name')!r}: name suffix hashes are not implemented; "
            "set options.disableNameSuffixHash: true"
        )
    if generator.get("behavior", "create") != "create":
        raise KustomizeError(f"{file}: generator behavior {generator['behavior']!r} is not supported")
    data: dict[str, str] = {}
    for literal in generator.get("literals") or []:
        key, _, value = str(literal).partition("=")
        data[key] = value
    for entry in generator.get("files") or []:
        key, _, source = str(entry).rpartition("=")
        path = _inside(directory, directory / source, "generator file")
        data[key or path.name] = path.read_text()
    metadata: Obj = {"name": generator["name"]}
    if merged.get("labels"):
        metadata["labels"] = dict(merged["labels"])
    if merged.get("annotations"):
        metadata["annotations"] = dict(merged["annotations"])
    generated: Obj = {"apiVersion": "v1", "kind": kind, "metadata": metadata}
    if kind == "Secret":
        generated["type"] = generator.get("type", "Opaque")
        generated["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    else:
        generated["data"] = data
    return generated


# ------------------------------------------------------------------------------------- selection
_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _label_terms(selector: str) -> list[str]:
    """Split on the commas between terms, not those inside ``in (a, b)``."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    return [t.strip() for t in [*terms, current] if t.strip()]


def _matches_labels(o: Obj, selector: str) -> bool:
    """Label selector syntax: ``k=v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``."""
    labels = _meta(o).get("labels") or {}
    for term in _label_terms(selector):
        set_term = _SET_TERM.match(term)
        if set_term is not None:
            key, operator, values = set_term.groups()
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            if (labels.get(key) in allowed) != (operator == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _selected(o: Obj, selector: Obj) -> bool:
    unknown = set(selector) - {"kind", "name", "namespace", "labelSelector", "group", "version"}
    if unknown:
        raise KustomizeError(f"unsupported selector fields {sorted(unknown)}")
    group, _, version = o["apiVersion"].rpartition("/")
    checks = [
        ("kind", o["kind"]),
        ("name", _meta(o).get("name", "")),
        ("namespace", _meta(o).get("namespace", "")),
        ("group", group),
        ("version", version),
    ]
    for field, actual in checks:
        wanted = selector.get(field)
        if wanted is not None and re.fullmatch(str(wanted), actual) is None:
            return False
    return "labelSelector" not in selector or _matches_labels(o, selector["labelSelector"])


# ---------------------------------------------------------------------------------------- patches
def _apply_patch(directory: Path, file: Path, objects: list[Obj], patch: Obj) -> None:
    unknown = set(patch) - {"path", "patch", "target", "options"}
    if unknown:
        raise KustomizeError(f"{file}: unsupported patch fields {sorted(unknown)}")
    if "path" in patch:
        text = _inside(directory, directory / patch["path"], "patch").read_text()
    elif "patch" in patch:
        text = patch["patch"]
    else:
        raise KustomizeError(f"{file}: a patch needs path or patch")
    try:
        bodies = [b for b in yaml.safe_load_all(text) if b is not None]
    except yaml.YAMLError as error:
        raise KustomizeError(f"{file}: patch is not YAML: {error}") from error
    if len(bodies) > 1 and "target" in patch:
        raise KustomizeError(f"{file}: a patch with a target must be one document")
    for body in bodies:
        _apply_one_patch(file, objects, body, patch.get("target"))


def _apply_one_patch(file: Path, objects: list[Obj], body: Any, target: Obj | None) -> None:
    if isinstance(body, list):  # JSON 6902
        if target is None:
            raise KustomizeError(f"{file}: a JSON 6902 patch needs a target")
        matched = [o for o in objects if _selected(o, target)]
        if not matched:
            raise KustomizeError(f"{file}: patch target {target} matches nothing")
        for o in matched:
            for operation in body:
                _json6902(o, operation, file)
        return
    if not isinstance(body, dict):
        raise KustomizeError(f"{file}: a patch is a map (strategic merge) or a list (JSON 6902)")
    if target is None:
        target = {"kind": body.get("kind"), "name": _meta(body).get("name")}
        if not target["kind"] or not target["name"]:
            raise KustomizeError(
                f"{file}: a strategic-merge patch without target needs kind and metadata.name"
            )
        target = _exact(target)
    matched = [o for o in objects if _selected(o, target)]
    if not matched:
        raise KustomizeError(f"{file}: patch target {target} matches nothing")
    for o in matched:
        merged = _strategic_merge(o, {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}, "")
        o.clear()
        o.update(merged)


def _strategic_merge(base: Any, patch: Any, where: str) -> Any:
    if isinstance(patch, dict) and patch.get("$patch") == "delete":
        return None
    if isinstance(base, dict) and isinstance(patch, dict):
        result = dict(base)
        for key, value in patch.items():
            if key == "metadata" and where == "" and isinstance(value, dict):
                # A patch's metadata.name selects; it must not rename the object.
                value = {k: v for k, v in value.items() if k not in ("name", "namespace")}
            if value is None:
                result.pop(key, None)
            elif key in result:
                merged = _strategic_merge(result[key], value, f"{where}/{key}")
                if merged is None:
                    result.pop(key)
                else:
                    result[key] = merged
            elif not (isinstance(value, dict) and value.get("$patch") == "delete"):
                result[key] = copy.deepcopy(value)
        return result
    if isinstance(base, list) and isinstance(patch, list) and _named_maps(base) and _named_maps(patch):
        items = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, old in enumerate(items) if old["name"] == item["name"]), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    items.pop(index)
            elif index is None:
                items.append(copy.deepcopy(item))
            else:
                items[index] = _strategic_merge(items[index], item, f"{where}/{item['name']}")
        return items
    return copy.deepcopy(patch)


def _named_maps(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(o: Obj, operation: Obj, file: Path) -> None:
    op, parts = operation.get("op"), _pointer(operation.get("path", ""))
    if op not in ("add", "remove", "replace"):
        raise KustomizeError(f"{file}: JSON 6902 op {op!r} is not supported")
    parent: Any = o
    for part in parts[:-1]:
        try:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        except (KeyError, IndexError, ValueError) as error:
            raise KustomizeError(f"{file}: path {operation['path']} does not exist in {_name(o)}") from error
    last = parts[-1]
    if isinstance(parent, list):
        if op == "add":
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(operation["value"]))
            return
        index = int(last)
        if index >= len(parent):
            raise KustomizeError(f"{file}: path {operation['path']} does not exist in {_name(o)}")
        if op == "remove":
            parent.pop(index)
        else:
            parent[index] = copy.deepcopy(operation["value"])
        return
    if not isinstance(parent, dict):
        raise KustomizeError(f"{file}: path {operation['path']} does not exist in {_name(o)}")
    if op in ("remove", "replace") and last not in parent:
        raise KustomizeError(f"{file}: path {operation['path']} does not exist in {_name(o)}")
    if op == "remove":
        del parent[last]
    else:
        parent[last] = copy.deepcopy(operation["value"])


def _name(o: Obj) -> str:
    return f"{o['kind']} {_meta(o).get('name')!r}"


# --------------------------------------------------------------------------- labels, images, ...
def _apply_labels(objects: list[Obj], label: Obj) -> None:
    pairs = label.get("pairs") or {}
    for o in objects:
        o.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if label.get("includeTemplates") or label.get("includeSelectors"):
            for path in TEMPLATE_PATHS:
                template = _get(o, path)
                if isinstance(template, dict):
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if label.get("includeSelectors"):
            selector = _get(o, SELECTOR_PATHS[0]) if o["kind"] != "Service" else _get(o, SELECTOR_PATHS[1])
            if isinstance(selector, dict):
                selector.update(pairs)


def _get(o: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(o, dict) or part not in o:
            return None
        o = o[part]
    return o


def _containers(node: Any) -> Iterator[Obj]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _image_name(image: str) -> str:
    without_digest = image.split("@", 1)[0]
    last_colon, last_slash = without_digest.rfind(":"), without_digest.rfind("/")
    return without_digest[:last_colon] if last_colon > last_slash else without_digest


def _apply_image(objects: list[Obj], image: Obj) -> None:
    for o in objects:
        for container in _containers(o.get("spec")):
            current = container.get("image")
            if not isinstance(current, str) or _image_name(current) != image["name"]:
                continue
            name = image.get("newName", _image_name(current))
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{name}:{image['newTag']}"
            else:
                container["image"] = name + current[len(_image_name(current)) :]


def _apply_replicas(objects: list[Obj], replica: Obj, file: Path) -> None:
    matched = [
        o
        for o in objects
        if _meta(o).get("name") == replica["name"]
        and o["kind"] in ("Deployment", "StatefulSet", "ReplicaSet")
    ]
    if not matched:
        raise KustomizeError(f"{file}: replicas for {replica['name']!r} match no workload")
    for o in matched:
        o.setdefault("spec", {})["replicas"] = int(replica["count"])


# ---------------------------------------------------------------------------------- replacements
_SEGMENT = re.compile(r"\[[^\]]*\]|[^.\[]+")


def _field_path(path: str) -> list[str]:
    """``spec.template.spec.containers.[name=hub].env.[name=X].value`` -> its segments."""
    segments = []
    for match in _SEGMENT.finditer(path):
        segment = match.group(0)
        segments.append(segment[1:-1] if segment.startswith("[") and "=" not in segment else segment)
    return segments


def _walk(node: Any, segments: list[str], create: bool) -> tuple[Any, str | int] | None:
    """The container holding the field the path names, and its key there (None: missing)."""
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment.startswith("[") and "=" in segment:
            key, value = segment[1:-1].split("=", 1)
            if not isinstance(node, list):
                return None
            found = next(
                (j for j, item in enumerate(node) if isinstance(item, dict) and item.get(key) == value), None
            )
            if found is None:
                return None
            if last:
                return node, found
            node = node[found]
            continue
        if isinstance(node, list) and segment.isdigit():
            if int(segment) >= len(node):
                return None
            if last:
                return node, int(segment)
            node = node[int(segment)]
            continue
        if not isinstance(node, dict):
            return None
        if last:
            return node, segment
        if segment not in node:
            if not create:
                return None
            node[segment] = {}
        node = node[segment]
    return None


def _exact(selector: Obj) -> Obj:
    """Replacements select by exact values; _selected takes regular expressions (as patches do)."""
    return {k: v if k == "labelSelector" else re.escape(str(v)) for k, v in selector.items()}


def _apply_replacement(objects: list[Obj], replacement: Obj, file: Path) -> None:
    source = replacement.get("source") or {}
    sources = [
        o for o in objects if _selected(o, _exact({k: v for k, v in source.items() if k != "fieldPath"}))
    ]
    if len(sources) != 1:
        raise KustomizeError(f"{file}: replacement source {source} matches {len(sources)} objects, not 1")
    found = _walk(sources[0], _field_path(source.get("fieldPath", "metadata.name")), create=False)
    if found is None:
        raise KustomizeError(f"{file}: replacement source field {source.get('fieldPath')} does not exist")
    container, key = found
    value = container[key]
    for target in replacement.get("targets") or []:
        select = _exact(target.get("select") or {})
        rejects = [_exact(r) for r in target.get("reject") or []]
        matched = [o for o in objects if _selected(o, select) and not any(_selected(o, r) for r in rejects)]
        if not matched:
            raise KustomizeError(f"{file}: replacement target {target.get('select')} matches nothing")
        options = target.get("options") or {}
        for o in matched:
            for path in target.get("fieldPaths") or []:
                at = _walk(o, _field_path(path), create=bool(options.get("create")))
                if at is None:
                    raise KustomizeError(
                        f"{file}: replacement target field {path} does not exist in {_name(o)}"
                    )
                holder, field = at
                if "delimiter" in options:
                    parts = str(holder[field]).split(options["delimiter"])
                    index = int(options.get("index", 0))
                    if not 0 <= index < len(parts):
                        raise KustomizeError(f"{file}: index {index} out of range in {path} of {_name(o)}")
                    parts[index] = str(value)
                    holder[field] = options["delimiter"].join(parts)
                else:
                    holder[field] = copy.deepcopy(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render a kustomization (the subset deploy/check supports).")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render(args.directory))
    except KustomizeError as error:
        print(f"kustomize: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
