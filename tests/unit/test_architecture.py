"""The shape of the house: no module imports the entry point, no import cycles, imports only
go down the layers, and modules stay small (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "jaxrec"

# Lower layers never import higher ones (docs/architecture.md, "Layers").
LAYERS = [
    {"jaxrec", "jaxrec.types", "jaxrec.config", "jaxrec.paths", "jaxrec.io", "jaxrec.trust",
     "jaxrec.environment", "jaxrec.extras", "jaxrec.multihost"},
    {"jaxrec.data"},
    {"jaxrec.models"},
    {"jaxrec.losses"},
    {"jaxrec.metrics", "jaxrec.logging", "jaxrec.stats"},
    {"jaxrec.privacy"},
    {"jaxrec.training"},
    {"jaxrec.assembly"},
    {"jaxrec.runner", "jaxrec.recommend", "jaxrec.api", "jaxrec.memory_plan"},
    {"jaxrec.sweep", "jaxrec.reproduce", "jaxrec.compare", "jaxrec.benchmarks"},
    {"jaxrec.cli"},
    {"jaxrec.train"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every jaxrec module ``name`` imports, at module level or inside functions
    (``if TYPE_CHECKING:`` blocks excluded): ``from a import b`` names ``a.b`` when that is
    a module, else ``a``."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and _is_type_checking(node) for n in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "jaxrec")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "jaxrec":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                out.add(candidate if candidate in modules else base)
    return {m for m in out if m in modules and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def test_nothing_imports_the_entry_point(graph):
    importers = sorted(m for m, deps in graph.items() if "jaxrec.train" in deps)
    assert not importers, f"modules importing jaxrec.train: {importers}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_graph(graph):
    """Module edges minus those into a package's own ``__init__`` (its re-exports)."""
    return {m: {d for d in deps if not (m.startswith(d + ".") and (PACKAGE.parent / d.replace(
        ".", "/") / "__init__.py").is_file())} for m, deps in graph.items()}


def test_no_import_cycles(graph):
    assert _cycles(_package_graph(graph)) == []


def test_cycle_detection_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(planted) == [["a", "b", "c"]]


def _layer(module: str) -> int:
    best, rank = -1, -1
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{module} is in no layer: add it to LAYERS and docs/architecture.md"
    return rank


def test_imports_only_go_down_the_layers(graph):
    # the package's lazy facade (jaxrec.run, jaxrec.Recommender) may name the API: importing
    # jaxrec imports none of it (test_importing_jaxrec_imports_no_layer)
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                    if _layer(d) > _layer(m) and not (m == "jaxrec" and d == "jaxrec.api"))
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_importing_jaxrec_imports_no_layer():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys, jaxrec; print(sorted(m for m in "
                          "sys.modules if m.split('.')[0] in ('jax', 'hydra', 'flax') "
                          "or m.startswith('jaxrec.')))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out


def test_modules_stay_small():
    large = sorted(f"{name} ({n} lines)" for name, path in _modules().items()
                   if (n := len(path.read_text().splitlines())) > 360)
    assert not large, f"modules over 360 lines: {large}"
