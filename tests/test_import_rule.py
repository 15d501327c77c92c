"""docs/reference.md §1: training imports none of the others; landscape and diversity import training only, never
each other; figures may import all three; nothing imports figures. And no import circle among the modules of the
four packages, counting imports inside functions too."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("training", "landscape", "diversity", "figures")
ALLOWED = {
    "training": set(),
    "landscape": {"training"},
    "diversity": {"training"},
    "figures": {"training", "landscape", "diversity"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(PACKAGES)


def test_dependency_rule():
    violations = []
    checked = 0
    for pkg in PACKAGES:
        for f in sorted((REPO / pkg).rglob("*.py")) if (REPO / pkg).is_dir() else []:
            checked += 1
            bad = imported_packages(f) - ALLOWED[pkg] - {pkg}
            violations += [f"{f.relative_to(REPO)} imports {b}" for b in sorted(bad)]
    assert checked > 5
    assert not violations, violations


def test_rule_checker_catches_a_violation(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import landscape.grid\nfrom diversity import score\nimport torch\n")
    assert imported_packages(f) == {"landscape", "diversity"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports anywhere in it (module level or inside a function):
    ``import a.b``, ``from a.b import c`` (a.b.c when that is a module, else a.b) and relative imports."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            for a in node.names:
                found.update({f"{base}.{a.name}"} & modules or {base} & modules)
    return found - {name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each is a set of modules that import
    one another in a circle; a module importing itself is not counted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_circle():
    files = [f for pkg in PACKAGES for f in sorted((REPO / pkg).rglob("*.py"))]
    modules = {module_name(f) for f in files}
    graph = {module_name(f): module_imports(f, modules) for f in files}
    assert "landscape.record" in graph and graph["landscape.api"] >= {"landscape.record", "landscape.formats.dispatch"}
    assert import_cycles(graph) == []


def test_cycle_finder_catches_a_circle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}) == [["a", "b", "c"]]
    f = REPO / "landscape" / "record.py"
    assert module_imports(f, {"landscape.record", "landscape.directions", "training.errors"}) == {
        "landscape.directions", "training.errors"}
