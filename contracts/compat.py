"""The compatibility gate: the contracts against the snapshot of every published version.

``docs/partners/versioning.md`` is the policy; this module applies it. A published event
type version (``ch.lu.hub.relocation.arrival-registered.v1``) has a snapshot of its JSON
Schema in ``contracts/snapshots/<event type>.json``. The checker compares the schema the
contracts generate now with that snapshot, construct by construct (properties, required,
types, enums, const, formats, patterns, lengths and bounds, ``$defs``/``$ref``, ``anyOf`` for
optional fields, ``additionalProperties``, array items, defaults), and says of each change
in which direction it moves the set of data the schema accepts:

* ``annotation``: none (titles, descriptions, examples, order, ``$defs`` names);
* ``widens``: data the published schema refuses is now accepted. A reader still on the
  published schema refuses what a new producer may send: not FORWARD compatible;
* ``narrows``: data the published schema accepts is now refused. What a producer on the
  published schema sends, or what is still on a topic, is refused: not BACKWARD compatible;
* ``both``: accepted data changes both ways, or in a way no checker can decide (two
  regular expressions): neither.

The hub's policy is FULL: within a version only annotations may change, because every type
has strict readers on both sides (the hub reads what partners send and relays it in
deliveries; partners read what the hub sends), the schemas are closed, partners upgrade on
their own schedule, and topics keep records written under the old schema.

    python -m contracts.compat [--check]      exit 1 on a breaking change, a version without
                                              snapshot, or a snapshot without its version
    python -m contracts.compat --snapshot T   record the snapshot of the new version T
    python -m contracts.compat --update       re-record snapshots whose changes are allowed
    python -m contracts.compat --retire T     move T's snapshot to retired/ once T has left
                                              the catalogue after its deprecation period
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "SNAPSHOTS",
    "Change",
    "Direction",
    "Mode",
    "Report",
    "compare",
    "is_breaking",
    "main",
    "report",
]

SNAPSHOTS = Path(__file__).with_name("snapshots")
RETIRED = "retired"


class Direction(StrEnum):
    ANNOTATION = "annotation"
    WIDENS = "widens"
    NARROWS = "narrows"
    BOTH = "both"


class Mode(StrEnum):
    """Confluent's names: which readers must keep working across the change."""

    BACKWARD = "BACKWARD"  # new readers, old data: the schema may widen
    FORWARD = "FORWARD"  # old readers, new data: the schema may narrow
    FULL = "FULL"  # both: only annotations may change


_WHY = {
    Direction.ANNOTATION: "annotation only: what is accepted does not change",
    Direction.WIDENS: "accepts data the published schema refuses: readers of the published version "
    "would refuse such events (not FORWARD compatible)",
    Direction.NARROWS: "refuses data the published schema accepts: events sent under the published "
    "version, or still on a topic, would be refused (not BACKWARD compatible)",
    Direction.BOTH: "changes what is accepted both ways, or undecidably (neither BACKWARD nor FORWARD "
    "compatible)",
}


@dataclass(frozen=True)
class Change:
    path: str  # where in the data: "municipality.bfs_number", "conditions[]", "(root)"
    what: str  # "maximum 9999 -> 999"
    direction: Direction

    def __str__(self) -> str:
        return f"{self.path}: {self.what} ({self.direction.value}: {_WHY[self.direction]})"


def is_breaking(change: Change, mode: Mode = Mode.FULL) -> bool:
    if change.direction is Direction.ANNOTATION:
        return False
    if change.direction is Direction.BOTH or mode is Mode.FULL:
        return True
    return change.direction is (Direction.NARROWS if mode is Mode.BACKWARD else Direction.WIDENS)


# Keywords that do not decide what is valid (JSON Schema 2020-12 meta-data and content
# vocabularies, as pydantic emits them).
_ANNOTATIONS = frozenset(
    {"title", "description", "examples", "deprecated", "$comment", "readOnly", "writeOnly"}
)
# Where the minimum or maximum goes when the value grows.
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
# Keywords the comparison handles itself; any other keyword that changes is treated as "both".
_HANDLED = frozenset(
    {
        *_ANNOTATIONS,
        *_LOWER_BOUNDS,
        *_UPPER_BOUNDS,
        "$ref",
        "$defs",
        "$id",
        "$schema",
        "type",
        "enum",
        "const",
        "format",
        "pattern",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "anyOf",
        "default",
        "uniqueItems",
    }
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@dataclass
class _Comparison:
    old_root: Mapping[str, Any]
    new_root: Mapping[str, Any]
    changes: list[Change] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def note(self, path: str, what: str, direction: Direction) -> None:
        self.changes.append(Change(path or "(root)", what, direction))

    @staticmethod
    def resolve(root: Mapping[str, Any], schema: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """``schema`` with a local ``$ref`` replaced by its target (siblings kept); the ref too."""
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return dict(schema), None
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"cannot compare a schema with the $ref {ref!r} (only #/$defs/... ones)")
        target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"))
        if target is None:
            raise ValueError(f"$ref {ref!r} names no definition")
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return {**target, **siblings}, ref

    def compare(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old, old_ref = self.resolve(self.old_root, old)
        new, new_ref = self.resolve(self.new_root, new)
        if old_ref is not None or new_ref is not None:
            # A recursive definition compares once per pair of definitions and place.
            key = (old_ref or "", new_ref or "", path)
            if key in self.seen:
                return
            self.seen.add(key)
        self.nullable_and_branches(old, new, path)

    def nullable_and_branches(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        """pydantic writes an optional field as ``anyOf: [X, {type: null}]``: the null branch is
        nullability, the others are compared as alternatives."""
        old_branches, old_null = _branches(old)
        new_branches, new_null = _branches(new)
        if old_null != new_null:
            what = "may now be null" if new_null else "may no longer be null"
            self.note(path, what, Direction.WIDENS if new_null else Direction.NARROWS)
        for name in _ANNOTATIONS | {"default"}:
            self.keyword_outside_branches(old, new, name, path)
        if len(old_branches) == 1 and len(new_branches) == 1:
            self.branch(old_branches[0], new_branches[0], path)
            return
        old_keys = {_branch_key(self.old_root, b): b for b in old_branches}
        new_keys = {_branch_key(self.new_root, b): b for b in new_branches}
        for key in old_keys.keys() - new_keys.keys():
            self.note(path, f"alternative {key} removed", Direction.NARROWS)
        for key in new_keys.keys() - old_keys.keys():
            self.note(path, f"alternative {key} added", Direction.WIDENS)
        for key in old_keys.keys() & new_keys.keys():
            self.branch(old_keys[key], new_keys[key], f"{path}|{key}")

    def keyword_outside_branches(
        self, old: Mapping[str, Any], new: Mapping[str, Any], name: str, path: str
    ) -> None:
        if _json(old.get(name)) == _json(new.get(name)):
            return
        if name == "default":
            # What an absent field means is part of the contract, not a comment.
            what = f"default {_show(old.get(name))} -> {_show(new.get(name))}"
            self.note(path, f"{what}: the meaning of an absent field changes", Direction.BOTH)
        else:
            self.note(path, f"{name} changed", Direction.ANNOTATION)

    def branch(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old, _ = self.resolve(self.old_root, old)
        new, _ = self.resolve(self.new_root, new)
        if "anyOf" in old or "anyOf" in new:
            self.compare(old, new, path)
            return
        self.types(old, new, path)
        self.values(old, new, path)
        self.bounds(old, new, path)
        self.objects(old, new, path)
        self.arrays(old, new, path)
        for name in sorted((old.keys() | new.keys()) - {"anyOf"}):
            if name in _ANNOTATIONS and _json(old.get(name)) != _json(new.get(name)):
                self.note(path, f"{name} changed", Direction.ANNOTATION)
            elif name not in _HANDLED and _json(old.get(name)) != _json(new.get(name)):
                what = f"{name} {_show(old.get(name))} -> {_show(new.get(name))}"
                self.note(path, f"{what} (a keyword the checker does not weigh: breaking)", Direction.BOTH)
        for name in ("$id", "$schema"):
            if path == "" and old.get(name) != new.get(name):
                self.note(path, f"{name} {_show(old.get(name))} -> {_show(new.get(name))}", Direction.BOTH)

    def types(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_types, new_types = _types(old), _types(new)
        if old_types == new_types:
            return
        what = f"type {_show_types(old_types)} -> {_show_types(new_types)}"
        if (
            old_types is None
            or (new_types is not None and new_types > old_types)
            or _integer_to_number(old_types, new_types)
        ):
            self.note(path, what, Direction.WIDENS)
        elif new_types is None or new_types < old_types or _integer_to_number(new_types, old_types):
            self.note(path, what, Direction.NARROWS)
        else:
            self.note(path, what, Direction.BOTH)

    def values(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_enum, new_enum = _value_set(old), _value_set(new)
        if old_enum != new_enum:
            if old_enum is None or (new_enum is not None and new_enum > old_enum):
                added = sorted(new_enum - old_enum) if new_enum is not None and old_enum is not None else None
                what = "allowed values widened" + (f": adds {', '.join(added)}" if added else "")
                self.note(path, what, Direction.WIDENS)
            elif new_enum is None or new_enum < old_enum:
                removed = sorted(old_enum - new_enum) if new_enum is not None else None
                what = "allowed values narrowed" + (f": drops {', '.join(removed)}" if removed else "")
                self.note(path, what, Direction.NARROWS)
            else:
                what = (
                    f"allowed values changed: {', '.join(sorted(old_enum))} -> {', '.join(sorted(new_enum))}"
                )
                self.note(path, what, Direction.BOTH)
        for name in ("format", "pattern"):
            before, after = old.get(name), new.get(name)
            if before == after:
                continue
            what = f"{name} {_show(before)} -> {_show(after)}"
            if before is None:
                self.note(path, what, Direction.NARROWS)
            elif after is None:
                self.note(path, what, Direction.WIDENS)
            else:
                self.note(path, what, Direction.BOTH)
        if old.get("uniqueItems", False) != new.get("uniqueItems", False):
            unique = bool(new.get("uniqueItems", False))
            self.note(path, f"uniqueItems -> {unique}", Direction.NARROWS if unique else Direction.WIDENS)

    def bounds(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        for names, tighter_when_larger in ((_LOWER_BOUNDS, True), (_UPPER_BOUNDS, False)):
            for name in names:
                before, after = old.get(name), new.get(name)
                if before == after:
                    continue
                what = f"{name} {_show(before)} -> {_show(after)}"
                if before is None:
                    self.note(path, what, Direction.NARROWS)
                elif after is None:
                    self.note(path, what, Direction.WIDENS)
                else:
                    tighter = (after > before) == tighter_when_larger
                    self.note(path, what, Direction.NARROWS if tighter else Direction.WIDENS)

    def objects(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
        for name in sorted(old_props.keys() | new_props.keys()):
            where = f"{path}.{name}" if path else name
            if name not in new_props:
                if name in old_required:
                    self.note(where, "required field removed", Direction.BOTH)
                elif new_extra is False:
                    self.note(where, "optional field removed from a closed object", Direction.NARROWS)
                else:
                    self.note(where, "optional field removed (any value accepted now)", Direction.WIDENS)
            elif name not in old_props:
                if name in new_required:
                    self.note(
                        where,
                        "required field added",
                        Direction.BOTH if old_extra is False else Direction.NARROWS,
                    )
                elif old_extra is False:
                    self.note(where, "optional field added to a closed object", Direction.WIDENS)
                else:
                    self.note(where, "optional field added to an open object", Direction.NARROWS)
            else:
                if name in new_required and name not in old_required:
                    self.note(where, "optional field made required", Direction.NARROWS)
                elif name in old_required and name not in new_required:
                    self.note(where, "required field made optional", Direction.WIDENS)
                self.compare(old_props[name], new_props[name], where)
        for name in sorted((old_required ^ new_required) - (old_props.keys() | new_props.keys())):
            where = f"{path}.{name}" if path else name
            self.note(where, "required without a property schema changed", Direction.BOTH)
        if _json(old_extra) != _json(new_extra):
            if isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
                self.compare(old_extra, new_extra, f"{path}{{}}")
            elif old_extra is False:
                self.note(path, "object opened (additionalProperties no longer false)", Direction.WIDENS)
            elif new_extra is False:
                self.note(path, "object closed (additionalProperties: false)", Direction.NARROWS)
            elif old_extra is True or old_extra == {}:
                self.note(path, "additionalProperties constrained", Direction.NARROWS)
            elif new_extra is True or new_extra == {}:
                self.note(path, "additionalProperties unconstrained", Direction.WIDENS)
            else:
                self.note(path, "additionalProperties changed", Direction.BOTH)

    def arrays(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_prefix: Sequence[Any] = old.get("prefixItems", ())
        new_prefix: Sequence[Any] = new.get("prefixItems", ())
        if len(old_prefix) != len(new_prefix):
            self.note(path, f"tuple of {len(old_prefix)} items -> {len(new_prefix)}", Direction.BOTH)
        for index, (before, after) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(before, after, f"{path}[{index}]")
        old_items, new_items = old.get("items"), new.get("items")
        if old_items is None and new_items is None:
            return
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            self.compare(old_items, new_items, f"{path}[]")
        elif old_items is None or old_items is True or old_items == {}:
            self.note(f"{path}[]", "items constrained", Direction.NARROWS)
        elif new_items is None or new_items is True or new_items == {}:
            self.note(f"{path}[]", "items unconstrained", Direction.WIDENS)
        else:
            self.note(f"{path}[]", f"items {_show(old_items)} -> {_show(new_items)}", Direction.BOTH)


def _branches(schema: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
    if "anyOf" not in schema:
        # Annotations and the default belong to the field, weighed once outside its branches.
        kept = {k: v for k, v in schema.items() if k not in _ANNOTATIONS and k != "default"}
        return [kept], schema.get("type") == "null"
    branches = [b for b in schema["anyOf"] if not (isinstance(b, Mapping) and b.get("type") == "null")]
    return branches, len(branches) != len(schema["anyOf"])


def _branch_key(root: Mapping[str, Any], branch: Mapping[str, Any]) -> str:
    ref = branch.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    return _show_types(_types(branch))


def _types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    value = schema.get("type")
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


def _integer_to_number(narrow: frozenset[str] | None, wide: frozenset[str] | None) -> bool:
    """``integer`` became ``number`` (every integer is a number), the other types kept."""
    return (
        narrow is not None
        and wide is not None
        and "integer" in narrow
        and (narrow - {"integer"}) | {"number"} == wide
    )


def _value_set(schema: Mapping[str, Any]) -> frozenset[str] | None:
    """The allowed values, as JSON text, of a schema with ``enum`` or ``const``; None: any."""
    if "const" in schema:
        return frozenset({_json(schema["const"])})
    if "enum" in schema:
        return frozenset(_json(value) for value in schema["enum"])
    return None


def _show(value: Any) -> str:
    return "(none)" if value is None else _json(value)


def _show_types(types: frozenset[str] | None) -> str:
    return "(any)" if types is None else "|".join(sorted(types))


def compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from the published schema ``old`` to ``new``, each with its direction."""
    comparison = _Comparison(old, new)
    comparison.compare(old, new, "")
    return comparison.changes


@dataclass(frozen=True)
class Report:
    """The contracts against the snapshots."""

    changes: dict[str, list[Change]]  # event type -> changes against its snapshot
    unpublished: list[str]  # in the catalogue, no snapshot
    vanished: list[str]  # snapshot, not in the catalogue, not retired
    revived: list[str]  # retired, yet in the catalogue again
    mode: Mode = Mode.FULL

    def breaking(self) -> dict[str, list[Change]]:
        found = {t: [c for c in cs if is_breaking(c, self.mode)] for t, cs in self.changes.items()}
        return {t: cs for t, cs in found.items() if cs}

    def allowed(self) -> dict[str, list[Change]]:
        found = {t: [c for c in cs if not is_breaking(c, self.mode)] for t, cs in self.changes.items()}
        return {t: cs for t, cs in found.items() if cs}

    @property
    def passed(self) -> bool:
        return not (self.breaking() or self.unpublished or self.vanished or self.revived)

    def lines(self) -> list[str]:
        out = []
        for event_type, changes in sorted(self.breaking().items()):
            out.append(f"BREAKING {event_type} (policy {self.mode.value}; a new version .vN+1 is needed):")
            out += [f"  {change}" for change in changes]
        for event_type in self.unpublished:
            out.append(
                f"UNPUBLISHED {event_type}: no snapshot; once it is to be published, record it "
                f"with: python -m contracts.compat --snapshot {event_type}"
            )
        for event_type in self.vanished:
            out.append(
                f"REMOVED {event_type}: a published version lives until it is retired after its "
                "deprecation period (docs/partners/versioning.md); then: "
                f"python -m contracts.compat --retire {event_type}"
            )
        for event_type in self.revived:
            out.append(
                f"REUSED {event_type}: a retired version's name is never used again; use a new version"
            )
        for event_type, changes in sorted(self.allowed().items()):
            out.append(
                f"allowed {event_type} (not yet in its snapshot: python -m contracts.compat --update):"
            )
            out += [f"  {change}" for change in changes]
        return out


def current_schemas() -> dict[str, dict[str, Any]]:
    from contracts.schemas import json_schemas  # the catalogue loads every contract module

    return json_schemas()


def _snapshot_text(schema: Mapping[str, Any]) -> str:
    # The same text as the published schema file, so a snapshot reads like the publication.
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _read(folder: Path) -> dict[str, dict[str, Any]]:
    if not folder.is_dir():
        return {}
    return {
        p.name.removesuffix(".json"): json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))
    }


def report(
    snapshots: Path = SNAPSHOTS,
    current: Mapping[str, Mapping[str, Any]] | None = None,
    mode: Mode = Mode.FULL,
) -> Report:
    """Compare ``current`` (event type -> schema; by default the contracts') with ``snapshots``."""
    schemas = current_schemas() if current is None else current
    published = _read(snapshots)
    retired = _read(snapshots / RETIRED)
    return Report(
        changes={t: compare(published[t], schemas[t]) for t in sorted(published.keys() & schemas.keys())},
        unpublished=sorted(schemas.keys() - published.keys() - retired.keys()),
        vanished=sorted(published.keys() - schemas.keys()),
        revived=sorted(retired.keys() & schemas.keys()),
        mode=mode,
    )


def snapshot(event_types: Iterable[str], snapshots: Path = SNAPSHOTS) -> list[Path]:
    """Record the snapshot of each new version; refuses one that has a snapshot already."""
    schemas = current_schemas()
    written = []
    for event_type in event_types:
        if event_type not in schemas:
            raise ValueError(f"{event_type} is not in the catalogue")
        if (snapshots / f"{event_type}.json").exists() or (
            snapshots / RETIRED / f"{event_type}.json"
        ).exists():
            raise ValueError(
                f"{event_type} has a snapshot already: a published version is changed with --update"
            )
        snapshots.mkdir(parents=True, exist_ok=True)
        path = snapshots / f"{event_type}.json"
        path.write_text(_snapshot_text(schemas[event_type]), encoding="utf-8")
        written.append(path)
    return written


def update(snapshots: Path = SNAPSHOTS, mode: Mode = Mode.FULL) -> list[Path]:
    """Re-record the snapshots whose changes the policy allows; refuses if any is breaking."""
    result = report(snapshots, mode=mode)
    if result.breaking():
        raise ValueError("breaking changes; nothing recorded:\n" + "\n".join(result.lines()))
    schemas = current_schemas()
    written = []
    for event_type in result.allowed():
        path = snapshots / f"{event_type}.json"
        path.write_text(_snapshot_text(schemas[event_type]), encoding="utf-8")
        written.append(path)
    return written


def retire(event_type: str, snapshots: Path = SNAPSHOTS) -> Path:
    """Move the snapshot of a version that has left the catalogue to ``retired/``."""
    if event_type in current_schemas():
        raise ValueError(f"{event_type} is still in the catalogue: remove its contract first")
    source = snapshots / f"{event_type}.json"
    if not source.exists():
        raise ValueError(f"{event_type} has no snapshot")
    target = snapshots / RETIRED / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    source.rename(target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.compat",
        description="Compare the contracts with the snapshots of the published versions "
        "(docs/partners/versioning.md).",
    )
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument(
        "--check", action="store_true", help="compare; exit 1 on a breaking change (default)"
    )
    actions.add_argument("--snapshot", nargs="+", metavar="TYPE", help="record the snapshot of new versions")
    actions.add_argument("--update", action="store_true", help="record allowed changes in the snapshots")
    actions.add_argument("--retire", metavar="TYPE", help="move a removed version's snapshot to retired/")
    parser.add_argument("--snapshots", type=Path, default=SNAPSHOTS, help="the snapshot folder")
    args = parser.parse_args(argv)
    try:
        if args.snapshot:
            for path in snapshot(args.snapshot, args.snapshots):
                print(f"recorded {path}")
            return 0
        if args.update:
            for path in update(args.snapshots):
                print(f"updated {path}")
            return 0
        if args.retire:
            print(f"retired to {retire(args.retire, args.snapshots)}")
            return 0
    except ValueError as error:
        print(f"contracts.compat: {error}", file=sys.stderr)
        return 1
    result = report(args.snapshots)
    for line in result.lines():
        print(line)
    if not result.passed:
        print("contracts.compat: the contracts break a published version", file=sys.stderr)
        return 1
    count = len(result.changes)
    print(f"contracts.compat: {count} published versions, no breaking change ({result.mode.value})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
