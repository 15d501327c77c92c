"""Signposts point somewhere: every citation of docs/reference.md names one of its headings (not a number, which a
reordering would break), no text cites a document the repository does not hold, and no code comment cites an
issue number (the tracker is not in the clone)."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("training", "landscape", "diversity", "figures", "bench", "orthokd", "tests")
CITATION = re.compile(r'docs/reference\.md,? ((?:"[^"\n]+"(?:, | and )?)+)')


def texts():
    for top in SOURCES:
        for p in sorted((REPO / top).rglob("*.py")):
            yield p, p.read_text()
    for p in (REPO / "README.md", REPO / "docs" / "reference.md"):
        yield p, p.read_text()


def headings() -> list[str]:
    return [line.lstrip("#").strip() for line in (REPO / "docs" / "reference.md").read_text().splitlines()
            if line.startswith("##")]


def test_every_reference_citation_names_a_heading():
    names = headings()
    cited, unknown = 0, []
    for path, text in texts():
        for m in CITATION.finditer(text):
            for name in re.findall(r'"([^"\n]+)"', m.group(1)):
                cited += 1
                if not any(h.startswith(name) for h in names):
                    unknown.append(f"{path.relative_to(REPO)}: {name!r}")
    assert cited > 20
    assert not unknown, unknown


def test_no_section_numbers_no_outside_documents_no_issue_numbers():
    bad = []
    for path, text in texts():
        if path.name == "test_signposts.py":
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if re.search(r"reference\.md,? §|reference §|DESIGN(\.md)? §|\.\./shared/DESIGN", line):
                bad.append(f"{path.relative_to(REPO)}:{i}: {line.strip()[:100]}")
            if path.suffix == ".py" and re.search(r"#.*\bissues? #?\d+|\bissue #?\d+ item", line, re.I):
                bad.append(f"{path.relative_to(REPO)}:{i}: {line.strip()[:100]}")
    assert not bad, "\n".join(bad)
