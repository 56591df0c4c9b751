"""The architecture, checked: what a service's rules may reach, who holds a connection,
and that no two modules import each other, directly or around a loop.

Handlers and domain modules are imported in a fresh interpreter each, so what they reach
through the hub counts too, not only what they name themselves.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("contracts", "hub", "services", "partner")
# Folders whose packages import as top-level names: partner/ is the partner distribution's
# folder (hub_partner), not a package of its own.
SOURCE_ROOTS = ("partner",)
IO_LIBRARIES = ("asyncpg", "aiokafka", "faststream")
# Where a service may hold a raw connection: its adapter package.
ADAPTER_DIR = "adapters"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in SOURCE_ROOTS:
        parts.pop(0)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def rule_modules() -> list[str]:
    """Every service's handlers and domain modules: the code a unit test runs without I/O."""
    found = []
    for path in sorted((ROOT / "services").glob("*/*.py")):
        stem = path.stem
        if stem.startswith("handlers") or stem.startswith("domain") or stem.endswith("_domain"):
            found.append(module_name(path))
    return found


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def imported_names(tree: ast.Module, this_module: str, is_package: bool) -> Iterator[str]:
    """Absolute names this module imports at run time (``if TYPE_CHECKING`` blocks excluded)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = this_module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}"
                yield base
        pending.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in source_files()}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for target in imported_names(tree, name, path.name == "__init__.py"):
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_check_finds_rule_modules_in_every_service() -> None:
    services = {name.split(".")[1] for name in rule_modules()}
    assert services == {"identity", "registry", "notifications"}


@pytest.mark.parametrize("module", rule_modules())
def test_no_io_library_is_reachable_from_a_services_rules(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        f"print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in {IO_LIBRARIES!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    reached = [line for line in result.stdout.splitlines() if line and "." not in line]
    assert reached == [], f"{module} reaches {', '.join(reached)}"


def test_only_a_services_adapter_holds_a_connection() -> None:
    offenders = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        if ADAPTER_DIR in path.relative_to(ROOT).parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        name = module_name(path)
        if any(target.split(".")[0] == "asyncpg" for target in imported_names(tree, name, False)):
            offenders.append(name)
    assert offenders == []


def test_there_are_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_hub_keeps_at_most_fifteen_top_level_modules() -> None:
    top_level = [p for p in (ROOT / "hub").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()]
    assert len(top_level) <= 15, sorted(p.name for p in top_level)


def test_asyncpg_exceptions_are_named_in_one_place() -> None:
    """``hub.runtime.db`` translates them; everything else catches the hub's own."""
    pattern = re.compile(r"asyncpg\.(exceptions\b|[A-Za-z]*(Error|Exception)\b)")
    naming = sorted(
        module_name(path)
        for path in source_files()
        if pattern.search(path.read_text()) and module_name(path) != "hub.runtime.db"
    )
    assert naming == []


def test_the_partner_client_names_nothing_of_the_hub() -> None:
    """hub_partner installs without the hub (``pip install ./partner``): only contracts, its own."""
    offenders = []
    for path in sorted((ROOT / "partner").rglob("*.py")):
        name = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        reached = {t.split(".")[0] for t in imported_names(tree, name, path.name == "__init__.py")}
        offenders += [f"{name} imports {top}" for top in sorted(reached & {"hub", "services", "partner"})]
    assert offenders == []


def test_importing_the_partner_client_loads_none_of_the_hubs_server_parts() -> None:
    server_parts = {"hub", "services", "opentelemetry", "faststream", "asyncpg", "prometheus_client"}
    probe = "import sys, hub_partner\nprint('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(result.stdout.split())
    assert {"hub_partner", "contracts", "aiokafka", "cryptography"} <= loaded
    assert loaded & server_parts == set()
