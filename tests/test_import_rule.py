"""docs/reference.md §1: training imports none of the others; landscape and diversity import training only, never
each other; figures may import all three; nothing imports figures."""
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
