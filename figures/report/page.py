"""report.html: one self-contained page (no server, works offline) with the claims table, every table the study wrote
beside the paper's cells (our cell highlighted where the paper's number lies outside our interval, or, without an
interval, differs by at least HIGHLIGHT points), the diversity plot, the static surface figures, and every loss
surface of Tables 7-8 as an interactive plotly 3-D view (plotly.js inlined once). The heights of a view are the
points of the VTK file beside it (TABLES_DIR/tableN_vtk/METHOD_eEEE.vts, read back), so the page and ParaView show
the same surface; hovering shows the loss and the accuracy of the grid point."""
from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from figures.augment.plan import AUGMENT_PRESETS, with_networks
from figures.paper import SURFACE_TABLES
from figures.pruning.plan import PRUNE_PRESETS
from figures.report.catalogue import COLUMNS as CLAIM_COLUMNS
from figures.report.catalogue import TOY_NOTE, Inputs, evaluate_claims, write_claims
from figures.report.inputs import study_json
from training.store.files import atomic_write_text

HIGHLIGHT = 1.0  # points: a one-seed cell this far from the paper's is highlighted
TABLE_STEMS = ("table1", "table2", "table3", "table4", "table5", "table6", "table7_hessian", "table7_flatness",
               "table8_hessian", "table8_flatness")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_T95 = re.compile(r"\[±(\d+(?:\.\d+)?)\]")
_VTS = re.compile(r"^(?P<method>.+)_e(?P<epoch>\d+)\.vts$")

STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1500px}table{border-collapse:collapse;margin:.5em 0 1.5em;
font-size:13px}td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}th{background:#eee}
.differs{background:#ffd9a8}.supported{background:#c8f0c8}.contradicted{background:#f6b8b8}.inconclusive{background:
#f3f3c8}.not-run{background:#ddd}.toy{border:2px solid #c00;padding:.6em;background:#fee;font-weight:bold}
.views{display:flex;flex-wrap:wrap;gap:8px}.view{border:1px solid #ccc}caption{text-align:left;font-size:12px;
padding:4px 0}img{max-width:100%;border:1px solid #ccc}"""


def _paper_pairs(columns: Sequence[str]) -> dict[str, str]:
    """Our column -> the paper's column beside it: 'X' -> 'X (paper)' (Tables 1-5), 'mean' -> 'paper mean' (6)."""
    pairs = {}
    for c in columns:
        for paper in (f"{c} (paper)", f"paper {c}"):
            if paper in columns:
                pairs[c] = paper
    return pairs


def _first_number(v) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = _NUMBER.search(str(v or ""))
    return float(m.group()) if m else None


def differs(ours, paper) -> tuple[bool, str]:
    """Whether our cell disagrees with the paper's: the paper's number outside mean +- t95 when our cell prints a
    t95 ('[±x]'), else |ours - paper| >= HIGHLIGHT; with the difference as a tooltip."""
    a, b = _first_number(ours), _first_number(paper)
    if a is None or b is None:
        return False, ""
    m = _T95.search(str(ours))
    half = float(m.group(1)) if m else None
    off = abs(a - b) > half if half is not None else abs(a - b) >= HIGHLIGHT
    return off, f"ours - paper = {a - b:+.3g}" + ("" if half is None else f" (our 95% half-width {half:g})")


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else html.escape(str(v))


def table_html(doc: dict) -> str:
    """A table written by figures.tables.write_table (its JSON) as HTML: caption, the shown columns, footnotes."""
    shown = [c for c in doc["columns"] if not any(isinstance(r.get(c), (dict, list)) for r in doc["rows"])]
    shown = [c for c in shown if c != "setup"]
    pairs = _paper_pairs(shown)
    body = []
    for r in doc["rows"]:
        cells = []
        for c in shown:
            off, tip = differs(r.get(c), r.get(pairs[c])) if c in pairs else (False, "")
            attrs = (
                f' class="differs" title="{html.escape(tip)}"'
                if off
                else (f' title="{html.escape(tip)}"' if tip else "")
            )
            cells.append(f"<td{attrs}>{_cell(r.get(c))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<p><small>{html.escape(n)}</small></p>" for n in doc.get("footnotes", []))
    return (f"<table><caption>{html.escape(doc['caption'])}</caption><tr>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in shown) + "</tr>" + "".join(body) + f"</table>{notes}")


def claims_html(rows: Sequence[dict]) -> str:
    head = "".join(f"<th>{c}</th>" for c in CLAIM_COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{r["verdict"].replace(" ", "-")}">{_cell(r[c])}</td>'
            if c == "verdict"
            else f"<td>{_cell(r[c])}</td>"
            for c in CLAIM_COLUMNS
        )
        + "</tr>"
        for r in rows
    )
    notes = "".join(f"<li><b>{html.escape(r['id'])}</b>: {html.escape(r['note'])}</li>" for r in rows if r["note"])
    return f'<table id="claims"><tr>{head}</tr>{body}</table><ul>{notes}</ul>'


def _png(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def surface_views(tables_dir: Path) -> dict[tuple[str, int], tuple[Path, list[int]]]:
    """(method, epoch) -> (its VTK file, the tables that show it); a surface in Tables 7 and 8 (the same file content,
    from the same run) is shown once."""
    out: dict[tuple[str, int], tuple[Path, list[int]]] = {}
    for table in sorted(SURFACE_TABLES, reverse=True):
        for path in sorted((tables_dir / f"table{table}_vtk").glob("*.vts")):
            m = _VTS.match(path.name)
            if m:
                key = (m["method"], int(m["epoch"]))
                out.setdefault(key, (path, []))[1].append(table)
    return out


def surface_figure(path: Path, title: str):
    """A plotly Surface of the VTK file's points (x, y, z as written: the scaled height) with the loss and the
    accuracy of every grid point on hover (the file's point arrays)."""
    import plotly.graph_objects as go
    import pyvista as pv

    mesh = pv.read(path)
    nx, ny, _ = mesh.dimensions

    def grid(a) -> np.ndarray:
        return np.asarray(a).reshape(ny, nx)  # VTK's point order: x fastest

    pts = np.asarray(mesh.points)
    x, y, z = grid(pts[:, 0])[0], grid(pts[:, 1])[:, 0], grid(pts[:, 2])
    text = np.array([[f"loss {loss:.4f}<br>accuracy {acc:.2f}%" for loss, acc in zip(row_l, row_a)]
                     for row_l, row_a in zip(grid(mesh.point_data["loss"]), grid(mesh.point_data["accuracy"]))],
                    dtype=object)  # a 2-D array: plotly would turn a nested list's rows into strings
    fig = go.Figure(go.Surface(x=x, y=y, z=z, text=text, showscale=False, colorscale="Viridis",
                               hovertemplate="a %{x:.3f}, b %{y:.3f}<br>%{text}<extra></extra>"))
    meta = json.loads(str(mesh.field_data["meta_json"][0]))
    zlabel = meta.get("vtk_heights", {}).get("z", "height")
    fig.update_layout(title=dict(text=title, font=dict(size=13)), width=460, height=400,
                      margin=dict(l=0, r=0, t=40, b=0),
                      scene=dict(xaxis_title="a", yaxis_title="b", zaxis_title=zlabel))
    return fig


def write_report(out: Path, tables_dir: Path, claims: Sequence[dict], toy: bool, summary: str) -> Path:
    """OUT/report.html from the claims rows and whatever TABLES_DIR holds (a table that was not made is absent
    from the page, and the page says which)."""
    parts = ["<h1>orthokd: the paper's claims tested on these runs</h1>"]
    if toy:
        parts.append(f'<p class="toy" id="toy">{html.escape(TOY_NOTE)}</p>')
    parts += [f"<p>{html.escape(summary)}</p>", "<h2>Claims</h2>", claims_html(claims),
              "<h2>Tables beside the paper's cells</h2>",
              f"<p>Highlighted: our cell where the paper's number lies outside our 95% interval (or, with one seed, "
              f"differs by at least {HIGHLIGHT:g}); hover for the difference.</p>"]
    missing = []
    for stem in TABLE_STEMS:
        path = tables_dir / f"{stem}.json"
        if path.is_file():
            table = study_json(path, f"python -m figures.study (it writes {path.name})")
            parts += [f'<h3 id="{stem}">{stem}</h3>', table_html(table)]
        else:
            missing.append(stem)
        if stem == "table6" and (tables_dir / "table6.png").is_file():
            parts.append(_png(tables_dir / "table6.png", "Table 6 diversity plot"))
    if missing:
        parts.append(f"<p>Not made (their runs are missing): {', '.join(missing)}.</p>")
    views = surface_views(tables_dir)
    if views:
        parts += ["<h2>Loss surfaces of Tables 7-8</h2>",
                  "<p>Drag to rotate, scroll to zoom, hover for the loss and accuracy of a grid point. Heights: those "
                  "of "
                  "the VTK files beside the tables (the same file is shown once when both tables hold it).</p>",
                  '<div class="views">']
        for i, ((method, epoch), (path, tables)) in enumerate(
            sorted(views.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        ):
            labels = " / ".join(dict.fromkeys(SURFACE_TABLES[t][method] for t in sorted(tables)))
            which = f"Table{'s' if len(tables) > 1 else ''} {' and '.join(map(str, sorted(tables)))}"
            title = f"{labels}, epoch {epoch} ({which})"
            fig = surface_figure(path, title)
            parts.append('<div class="view">' + fig.to_html(full_html=False, include_plotlyjs=i == 0,
                                                            div_id=f"surface-{method}-e{epoch}") + "</div>")
        parts.append("</div>")
    for t in sorted(SURFACE_TABLES):
        if (tables_dir / f"table{t}.png").is_file():
            parts += [f"<h3>Table {t}, static figure</h3>", _png(tables_dir / f"table{t}.png", f"Table {t}")]
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>orthokd claims report</title><style>"
            f"{STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    atomic_write_text(path, page)
    return path


def claims_and_report(runs_dir: Path, tables_dir: Path, out: Path, preset: str, seeds: int | None = None,
                      augment_networks: str | None = None, level: float = 0.95) -> list[Path]:
    """Test every claim on the runs of the figures.study ``preset`` (``seeds`` seeds per cell of Tables 1-5, else
    the preset's) and write OUT/claims.md, OUT/claims.json and OUT/report.html; returns the paths."""
    prune, augment = PRUNE_PRESETS[preset], with_networks(AUGMENT_PRESETS[preset], augment_networks)
    if seeds:
        prune, augment = (replace(s, seeds=tuple(range(seeds))) for s in (prune, augment))
    rows = evaluate_claims(Inputs(runs_dir, tables_dir, prune, augment), level)
    toy = preset != "full"
    paths = write_claims(out, rows, level, toy)
    summary = json.loads(paths[1].read_text())["summary"]
    return [*paths, write_report(out, tables_dir, rows, toy, summary)]
