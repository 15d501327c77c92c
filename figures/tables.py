"""Tables as Markdown, CSV, LaTeX and JSON from a list of rows (dicts with the same keys), written atomically."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.store.files import atomic_write_text, strict_json


def _fmt(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.{digits}f}"
    return "" if v is None else str(v)


Digits = int | Mapping[str, int]  # decimals for every float, or per column (missing columns: 3)


def _digits(digits: Digits, column: str) -> int:
    return digits if isinstance(digits, int) else digits.get(column, 3)


def to_markdown(rows: Sequence[dict], columns: Sequence[str], digits: Digits = 3) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(r.get(c), _digits(digits, c)) for c in columns) + " |" for r in rows]
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


def to_latex(rows: Sequence[dict], columns: Sequence[str], caption: str, digits: Digits = 3,
             footnotes: Sequence[str] = ()) -> str:
    head = " & ".join(_tex_escape(c) for c in columns)
    body = "\n".join(
        " & ".join(_tex_escape(_fmt(r.get(c), _digits(digits, c))) for c in columns) + r" \\" for r in rows
    )
    notes = "".join(f"\\par\\footnotesize {_tex_escape(n)}\n" for n in footnotes)
    return (f"\\begin{{table}}[t]\n\\centering\n\\caption{{{_tex_escape(caption)}}}\n"
            f"\\begin{{tabular}}{{{'l' + 'r' * (len(columns) - 1)}}}\n\\toprule\n{head} \\\\\n\\midrule\n{body}\n"
            f"\\bottomrule\n\\end{{tabular}}\n{notes}\\end{{table}}\n")


def write_table(out_dir: Path, stem: str, rows: Sequence[dict], columns: Sequence[str], caption: str,
                digits: Digits = 3, footnotes: Sequence[str] = (), data_columns: Sequence[str] = ()) -> list[Path]:
    """Write STEM.md (caption, table, footnotes), STEM.csv (full precision), STEM.tex and STEM.json (caption,
    footnotes, columns, rows); ``data_columns`` (long per-row text such as the setup) go into the CSV and JSON
    only. Returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "tex", "json")]
    notes = "".join(f"\n{n}\n" for n in footnotes)
    every = [*columns, *data_columns]
    atomic_write_text(paths[0], f"{caption}\n\n{to_markdown(rows, columns, digits)}{notes}")
    atomic_write_text(paths[1], to_csv(rows, every))
    atomic_write_text(paths[2], to_latex(rows, columns, caption, digits, footnotes))
    doc = {"caption": caption, "footnotes": list(footnotes), "columns": every,
           "rows": [{c: r.get(c) for c in every} for r in rows]}
    atomic_write_text(paths[3], strict_json(doc, indent=2) + "\n")
    return paths
