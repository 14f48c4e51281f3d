"""The import rules of the source tree, checked over its import graph.

Every ``import`` counts wherever it is written: at module level, inside a function, under
``if TYPE_CHECKING:``, and ``importlib.import_module("literal")``. The rules:

- ``agent`` never imports ``collector``, and ``collector`` never imports ``agent`` (what they
  share is the wire contract in ``protocol/`` and the site-file format in ``siteconfig/``);
- the shared packages (``protocol``, ``siteconfig``, ``clocks``) import neither ``agent``,
  ``collector`` nor ``simulators``: both sides stand on them;
- ``simulators`` never imports ``agent``: simulated devices and scenarios are built from
  ``siteconfig``, and the real agent runs as a process of its own;
- the collector's feature folders (its sub-packages) import each other without a cycle, at
  any length: an edge lying on a cycle is a violation. The collector's top-level modules
  (``collector/listeners.py``...) are nodes of that graph too, so that moving a module up out of
  its folder does not hide a cycle through it;
- domain modules do not import FastAPI (or Starlette): domain is every module of a collector
  feature folder but ``routes.py``, ``*_routes.py``, the route dependencies a feature offers
  (``deps.py``) and the ``collector/api/`` folder;
- nothing imports ``cli`` but ``cli`` itself (the command line sits on top of everything).

``tests/`` is not checked: a test may reach anything it tests.

There is no allow-list: every rule holds for every module (the list the restructuring started
from shrank to nothing). A failure prints each violation with one import behind it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Every top-level package of the product; tests/ may import anything.
CHECKED = tuple(
    sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")
)
WEB_FRAMEWORKS = ("fastapi", "starlette")
SHARED = ("protocol", "siteconfig", "clocks")


@dataclass(frozen=True, order=True)
class Violation:
    """One edge of the import graph that breaks a rule."""

    rule: str
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.rule} {self.importer} -> {self.imported}"


# -- the import graph -----------------------------------------------------------------------


def modules(root: Path, packages: Iterable[str]) -> Iterator[tuple[str, Path]]:
    """(dotted name, path) of every Python module under ``packages``."""
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), path


def _is_package(root: Path, dotted: str) -> bool:
    return (root / Path(*dotted.split(".")) / "__init__.py").is_file()


def _exists(root: Path, dotted: str) -> bool:
    base = root / Path(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(root: Path, name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, anywhere in its file (``from p import m`` names ``p.m``
    when ``m`` is a module, else ``p``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if _is_package(root, name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if _exists(root, sub) else base)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def import_graph(root: Path, packages: Iterable[str] = CHECKED) -> dict[str, set[str]]:
    """Importing module -> modules it imports."""
    return {name: imports_of(root, name, path) for name, path in modules(root, packages)}


# -- the rules --------------------------------------------------------------------------------


def _top(dotted: str) -> str:
    return dotted.split(".", 1)[0]


def _is_domain(root: Path, module: str) -> bool:
    """A module of a collector feature folder (its ``__init__`` included) but its routes, its
    route dependencies (``deps``) and ``collector/api/``."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "collector" or parts[1] == "api":
        return False
    if not _is_package(root, ".".join(parts[:2])):
        return False
    leaf = parts[-1]
    # Routes and the route dependencies a feature offers the others (``deps``) are the web layer.
    return not (leaf in ("routes", "deps") or leaf.endswith("_routes"))


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every node a path from ``start`` leads to."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _node(root: Path, dotted: str) -> str | None:
    """The node of the collector's folder graph a module belongs to: its feature folder
    (``collector.tickets.service`` -> ``tickets``), or the collector's top-level module itself
    (``collector.listeners`` -> ``listeners``: a cycle through a module moved up is a cycle)."""
    parts = dotted.split(".")
    if len(parts) < 2 or parts[0] != "collector":
        return None
    return parts[1] if _exists(root, f"collector.{parts[1]}") else None


def folder_graph(root: Path, graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Collector feature folder (or top-level module) -> those its modules import."""
    folders: dict[str, set[str]] = defaultdict(set)
    for importer, imported in graph.items():
        source = _node(root, importer)
        if source is None:
            continue
        for target in imported:
            node = _node(root, target)
            if node is not None and node != source:
                folders[source].add(node)
    return folders


def violations(root: Path, graph: dict[str, set[str]]) -> set[Violation]:
    """Every edge of ``graph`` that breaks a rule of this module's docstring."""
    found: set[Violation] = set()
    for importer, imported in graph.items():
        for target in imported:
            top, target_top = _top(importer), _top(target)
            if top == "agent" and target_top == "collector":
                found.add(Violation("agent-collector", importer, target))
            if top == "collector" and target_top == "agent":
                found.add(Violation("collector-agent", importer, target))
            if top in SHARED and target_top in ("agent", "collector", "simulators"):
                found.add(Violation("shared", importer, target))
            if top == "simulators" and target_top == "agent":
                found.add(Violation("simulators-agent", importer, target))
            if top != "cli" and target_top == "cli":
                found.add(Violation("cli", importer, target))
            if target_top in WEB_FRAMEWORKS and _is_domain(root, importer):
                found.add(Violation("domain-fastapi", importer, target_top))
    folders = folder_graph(root, graph)
    # An edge a -> b lies on a cycle when b leads back to a, however long the way.
    for source, targets in folders.items():
        for target in targets:
            if source in reachable(folders, target):
                found.add(Violation("cycle", source, target))
    return found


def _evidence(graph: dict[str, set[str]], violation: Violation) -> str:
    """For a folder edge, one import behind it (the other rules already name modules)."""
    if violation.rule != "cycle":
        return ""
    source, target = f"collector.{violation.importer}", f"collector.{violation.imported}"
    for importer in sorted(graph):
        if importer == source or importer.startswith(source + "."):
            for imported in sorted(graph[importer]):
                if imported == target or imported.startswith(target + "."):
                    return f"    # {importer} imports {imported}"
    return ""


# -- the source tree --------------------------------------------------------------------------


def report(graph: dict[str, set[str]], found: set[Violation]) -> str:
    """Every violation with one import behind it ("" when the rules hold)."""
    if not found:
        return ""
    lines = ["import rules broken (fix them: there is no allow-list):"]
    lines += [f"    {v}{_evidence(graph, v)}" for v in sorted(found)]
    return "\n".join(lines)


def test_the_source_tree_keeps_its_import_rules() -> None:
    graph = import_graph(ROOT)
    message = report(graph, violations(ROOT, graph))
    assert not message, message


# -- the checker itself, on small trees ---------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(root).parents:
            if parent != Path("."):
                (root / parent / "__init__.py").touch()
    return root


def _found(root: Path) -> list[str]:
    return sorted(str(v) for v in violations(root, import_graph(root)))


def test_a_cycle_of_three_feature_folders_is_found_through_every_kind_of_import(
    tmp_path: Path,
) -> None:
    root = _tree(
        tmp_path,
        {
            "collector/a/service.py": "from collector.b import service\n",
            "collector/b/service.py": "def f():\n    import collector.c.service\n",
            "collector/c/service.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from ..a.service import X\n"
            ),
            "collector/d/service.py": "from collector.a import service\n",
        },
    )
    assert _found(root) == ["cycle a -> b", "cycle b -> c", "cycle c -> a"]


def test_a_feature_folder_graph_without_a_cycle_passes(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "collector/a/service.py": "from collector.b import service\nimport collector.c\n",
            "collector/b/service.py": "from collector.c.models import Row\n",
            "collector/c/models.py": "from collector.settings import S\n",
            "collector/settings.py": "",
        },
    )
    assert _found(root) == []


def test_a_cycle_through_a_top_level_collector_module_is_a_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "collector/access.py": "from collector.tickets.lifecycle import ALLOWED\n",
            "collector/tickets/lifecycle.py": "",
            "collector/tickets/service.py": "from collector.access import Role\n",
        },
    )
    assert _found(root) == ["cycle access -> tickets", "cycle tickets -> access"]


def test_a_failure_names_each_violation_with_an_import_behind_it(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "collector/a/service.py": "from collector.b import service\n",
            "collector/b/service.py": "from collector.a import service\n",
        },
    )
    graph = import_graph(root)
    assert report(graph, violations(root, graph)).splitlines() == [
        "import rules broken (fix them: there is no allow-list):",
        "    cycle a -> b    # collector.a.service imports collector.b.service",
        "    cycle b -> a    # collector.b.service imports collector.a.service",
    ]


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("agent/link.py", "def f():\n    from collector.ingest import x\n", "agent-collector"),
        ("collector/enrolment/skeleton.py", "import agent.config\n", "collector-agent"),
        ("siteconfig/site.py", "from agent.buffer.settings import S\n", "shared"),
        ("protocol/models.py", "def f():\n    import collector.ingest\n", "shared"),
        ("simulators/stack.py", "from agent.config import load_site\n", "simulators-agent"),
        ("simulators/demo.py", "from cli.errors import UserError\n", "cli"),
        ("collector/tickets/service.py", "from fastapi import HTTPException\n", "domain-fastapi"),
        ("collector/tickets/flows.py", "from starlette.status import X\n", "domain-fastapi"),
        ("collector/tickets/__init__.py", "import fastapi\n", "domain-fastapi"),
    ],
)
def test_each_rule_is_broken_by_one_import(
    tmp_path: Path, path: str, text: str, expected: str
) -> None:
    root = _tree(tmp_path, {path: text})
    assert [str(v).split()[0] for v in violations(root, import_graph(root))] == [expected]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("collector/tickets/routes.py", "from fastapi import APIRouter\n"),
        ("collector/sites/inventory_routes.py", "from fastapi import APIRouter\n"),
        ("collector/api/deps.py", "from fastapi import Depends\n"),
        ("collector/app.py", "from fastapi import FastAPI\n"),
        ("cli/main.py", "from cli.errors import UserError\n"),
    ],
)
def test_routes_the_api_folder_and_the_cli_itself_may_import_what_they_need(
    tmp_path: Path, path: str, text: str
) -> None:
    root = _tree(tmp_path, {path: text})
    assert _found(root) == []
