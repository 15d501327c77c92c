"""Tables as Markdown, CSV and LaTeX from a list of rows (dicts with the same keys), written atomically."""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

from training.checkpoint import atomic_write_text


def _fmt(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.{digits}f}"
    return "" if v is None else str(v)


def to_markdown(rows: Sequence[dict], columns: Sequence[str], digits: int = 3) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(r.get(c), digits) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("σ", r"$\sigma$"), ("λ", r"$\lambda$")):
        s = s.replace(a, b)
    return s


def to_latex(rows: Sequence[dict], columns: Sequence[str], caption: str, digits: int = 3) -> str:
    head = " & ".join(_tex_escape(c) for c in columns)
    body = "\n".join(" & ".join(_tex_escape(_fmt(r.get(c), digits)) for c in columns) + r" \\" for r in rows)
    return (f"\\begin{{table}}[t]\n\\centering\n\\caption{{{_tex_escape(caption)}}}\n"
            f"\\begin{{tabular}}{{{'l' + 'r' * (len(columns) - 1)}}}\n\\toprule\n{head} \\\\\n\\midrule\n{body}\n"
            f"\\bottomrule\n\\end{{tabular}}\n\\end{{table}}\n")


def write_table(out_dir: Path, stem: str, rows: Sequence[dict], columns: Sequence[str], caption: str,
                digits: int = 3) -> list[Path]:
    """Write STEM.md (caption + table), STEM.csv and STEM.tex; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "tex")]
    atomic_write_text(paths[0], f"{caption}\n\n{to_markdown(rows, columns, digits)}")
    atomic_write_text(paths[1], to_csv(rows, columns))
    atomic_write_text(paths[2], to_latex(rows, columns, caption, digits))
    return paths
