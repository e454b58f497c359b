"""The package's layers, read from the source with `ast`: sources is neutral, the Resource Graph source knows
nothing of the demo, production code loads the demo only inside the functions that run it, and the
module-level imports of hotpatch_audit have no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "hotpatch_audit"
SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass(frozen=True)
class Import:
    """One import of a hotpatch_audit module: by whom, which module, where, and whether at module level."""

    importer: str
    module: str
    line: int
    module_level: bool


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(body: list[ast.AST], module_level: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs when the module is imported: not inside a function, not
    under `if TYPE_CHECKING:` (class bodies, if/try/with blocks at the top do run)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, module_level
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(list(ast.iter_child_nodes(node)), False)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _walk(list(node.body), False)
            yield from _walk(list(node.orelse), module_level)
        else:
            yield from _walk(list(ast.iter_child_nodes(node)), module_level)


def _targets(name: str) -> list[str]:
    """The hotpatch_audit modules `import name` runs: each package on the way down, then the module."""
    parts = name.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(2, len(parts) + 1)) if m in MODULES]


def imports_of(importer: str) -> list[Import]:
    """Every import of a hotpatch_audit module in one module's source."""
    path = MODULES[importer]
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found = []
    for node, module_level in _walk(list(ast.parse(path.read_text(encoding="utf-8")).body), True):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        targets = [m for name in names if name.startswith(PACKAGE + ".") for m in _targets(name)]
        found += [Import(importer, m, node.lineno, module_level) for m in dict.fromkeys(targets)]
    return found


ALL_IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _where(imp: Import) -> str:
    return f"{MODULES[imp.importer].relative_to(SRC)}:{imp.line} imports {imp.module}"


def test_the_reader_sees_the_imports() -> None:
    edges = {(i.importer, i.module) for i in ALL_IMPORTS if i.module_level}
    assert ("hotpatch_audit.arg.paging", "hotpatch_audit.sources") in edges
    assert ("hotpatch_audit.demo.fleet", "hotpatch_audit.demo.fleet._calendar") in edges  # relative import
    assert ("hotpatch_audit.demo.source", "hotpatch_audit.arg") in edges
    lazy = {(i.importer, i.module) for i in ALL_IMPORTS if not i.module_level}
    assert ("hotpatch_audit.pipeline", "hotpatch_audit.demo.source") in lazy


def test_sources_imports_neither_arg_nor_demo() -> None:
    bad = [_where(i) for i in ALL_IMPORTS if i.importer == "hotpatch_audit.sources"
           and (_inside(i.module, "hotpatch_audit.arg") or _inside(i.module, "hotpatch_audit.demo"))]
    assert not bad, bad


def test_the_resource_graph_source_imports_nothing_of_the_demo() -> None:
    bad = [_where(i) for i in ALL_IMPORTS
           if _inside(i.importer, "hotpatch_audit.arg") and _inside(i.module, "hotpatch_audit.demo")]
    assert not bad, bad


def test_production_modules_import_the_demo_only_inside_functions() -> None:
    bad = [_where(i) for i in ALL_IMPORTS if i.module_level and not _inside(i.importer, "hotpatch_audit.demo")
           and _inside(i.module, "hotpatch_audit.demo")]
    assert not bad, bad


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """The cycles a depth-first walk of `graph` meets, as `a -> b -> a`."""
    cycles = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_find_cycles_finds_one() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]


def test_module_level_imports_have_no_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in ALL_IMPORTS:
        # A submodule reaching its own package (import hotpatch_audit.arg.x from hotpatch_audit.arg.y) finds it
        # already being imported: not a cycle.
        if imp.module_level and imp.module != imp.importer and not _inside(imp.importer, imp.module):
            graph[imp.importer].add(imp.module)
    assert sum(map(len, graph.values())) > 50  # the graph was read
    cycles = find_cycles(graph)
    assert not cycles, cycles


def test_importing_every_production_module_loads_no_demo_module() -> None:
    production = sorted(m for m in MODULES if m != PACKAGE and not _inside(m, "hotpatch_audit.demo"))
    code = ("import importlib, sys\n"
            f"for name in {production!r}:\n"
            "    importlib.import_module(name)\n"
            "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('hotpatch_audit.demo'))))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout
