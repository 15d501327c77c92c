"""The floor plan, as docs/reference.md "Layout" draws it. Between packages: training <- {landscape, diversity} <-
figures (nothing imports figures; landscape and diversity never import each other). Inside each package the rooms
(top-level modules and subpackages) stand on floors and import only from their own floor or below; there is no
import circle anywhere, counting imports inside functions; and no library module imports a command-line module."""
import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("training", "landscape", "diversity", "figures")
ALLOWED = {
    "training": set(),
    "landscape": {"training"},
    "diversity": {"training"},
    "figures": {"training", "landscape", "diversity"},
}
# Rooms by floor, bottom first. A room is a top-level module or a subpackage of its package.
FLOORS = {
    "training": [
        {"errors", "log"},
        {"runtime", "models", "data"},
        {"config", "objectives"},
        {"store"},
        {"pruning", "external", "checkpoint"},
        {"engine", "cli"},
        {"train", "prune", "prune_schedule"},
    ],
    "landscape": [
        {"config", "directions", "folding", "hessian"},
        {"record"},
        {"heights", "labels", "engine"},
        {"compute", "sharpness", "formats", "pictures", "crosscheck"},
        {"api"},
        {"plot"},
    ],
    "diversity": [
        {"config", "batches", "naswot", "stats", "pairwise"},
        {"scoring"},
        {"report", "score_figure"},
        {"api"},
        {"score"},
    ],
    "figures": [
        {"paper", "tables", "cells", "captions", "jobs", "probe", "executor"},
        {"analysis", "pruning", "augment"},
        {"report"},
        {"study", "make", "claims"},
    ],
}
STUDIES = {"analysis", "pruning", "augment"}  # one folder per study; the studies never import each other
# Command-line modules: only they (and orthokd's console scripts) may import them.
CLI_MODULES = {"training.cli", "training.train", "training.prune", "training.prune_schedule", "landscape.plot",
               "diversity.score", "figures.study", "figures.make", "figures.claims"}


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


def graph() -> dict[str, set[str]]:
    files = [f for pkg in PACKAGES for f in sorted((REPO / pkg).rglob("*.py"))]
    modules = {module_name(f) for f in files}
    return {module_name(f): module_imports(f, modules) for f in files}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_cli(module: str) -> bool:
    return any(module == c or module.startswith(c + ".") for c in CLI_MODULES)


def test_dependency_rule():
    g = graph()
    assert len(g) > 50
    violations = [f"{m} imports {b}" for m, targets in g.items()
                  for b in sorted({t.split(".")[0] for t in targets} - ALLOWED[m.split(".")[0]] - {m.split(".")[0]})]
    assert not violations, violations


def test_every_room_has_a_floor_and_imports_only_its_floor_or_below():
    violations = []
    for m, targets in graph().items():
        pkg, r = m.split(".")[0], room(m)
        if not r:
            continue  # the package face (__init__) may re-export from any room
        floor = {name: k for k, names in enumerate(FLOORS[pkg]) for name in names}
        if r not in floor:
            violations.append(f"{m}: room {r!r} has no floor in FLOORS[{pkg!r}]; add it (and to docs/reference.md)")
            continue
        for t in targets:
            if t.split(".")[0] != pkg or room(t) in ("", r):
                continue
            if floor.get(room(t), len(FLOORS[pkg])) > floor[r]:
                violations.append(f"{m} (floor {floor[r]}) imports {t} from a floor above")
            elif r in STUDIES and room(t) in STUDIES:
                violations.append(f"{m} imports {t}: one study imports another")
    assert not violations, "\n".join(violations)


def test_no_import_circle():
    g = graph()
    assert g["landscape.api"] >= {"landscape.record", "landscape.formats.dispatch"}
    assert import_cycles(g) == []


def test_library_modules_never_import_a_command_line_module():
    violations = [f"{m} imports {t}" for m, targets in graph().items() if not is_cli(m)
                  for t in targets if is_cli(t)]
    assert not violations, violations


def test_the_checkers_catch_violations():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}) == [["a", "b", "c"]]
    f = REPO / "landscape" / "record.py"
    assert module_imports(f, {"landscape.record", "landscape.directions", "training.errors"}) == {
        "landscape.directions", "training.errors"}
    assert is_cli("training.cli.common") and is_cli("figures.study") and not is_cli("training.config")
    assert room("training.engine.fit") == "engine" and room("training") == ""


@pytest.mark.parametrize("pkg", PACKAGES)
def test_no_folder_crowds_more_than_a_dozen_modules(pkg):
    counts = defaultdict(int)
    for p in (REPO / pkg).rglob("*.py"):
        if p.name != "__init__.py":
            counts[p.parent.relative_to(REPO)] += 1
    assert all(n <= 13 for n in counts.values()), dict(counts)
