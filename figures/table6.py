"""Table 6: NASWOT scores per method from run directories, beside the paper's published rows."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch

from diversity.config import BN_CAPTION, ScoreConfig
from diversity.plot import plot_scores
from diversity.report import write_results
from diversity.runs import RunCheckpoint, discover_runs, require_runs
from diversity.scoring import load_all, score_checkpoints
from diversity.stats import Summary, summarize_groups
from figures.paper import TABLE6, TABLE6_ROWS, TABLE6_RUNS
from figures.pooled import read_run_config, setup_line, table_setup
from figures.tables import write_table
from training.errors import UserError
from training.pooling import check_table

COLUMNS = ["method", "n", "mean", "std", "ErrMargin", "99% (z)", "99% (t)", "Welch p vs Scratch", "verdict vs Scratch",
           "paper mean", "paper std", "paper ErrMargin", "paper 99%", "paper note", "paper verdict"]


def separation(mean: float, half: float, ref_mean: float, ref_half: float) -> str:
    """'higher' / 'lower' when the two 99% intervals are disjoint (Table 6's reading), else 'not separated'."""
    if any(math.isnan(v) for v in (mean, half, ref_mean, ref_half)):
        return "n/a"
    if mean - half > ref_mean + ref_half:
        return "higher"
    if mean + half < ref_mean - ref_half:
        return "lower"
    return "not separated"


def paper_footnotes() -> list[tuple[str, str]]:
    """(method, footnote) for every published Table 6 value the paper's own formula does not reproduce."""
    return [(m, f"{p.row}, {p.column}: {p.note}") for m, cols in TABLE6.items() for p in cols.values() if p.note]


def paper_columns(method: str) -> dict:
    """The published row as printed, its footnote marker and the paper's own verdict against Scratch."""
    if method not in TABLE6:
        return {}
    p, ref = TABLE6[method], TABLE6["scratch"]
    marks = [f"[{i + 1}]" for i, (m, _) in enumerate(paper_footnotes()) if m == method]
    return {"paper mean": p["mean"].value, "paper std": p["std"].value, "paper ErrMargin": p["err_margin"].value,
            "paper 99%": p["ci99"].value, "paper note": " ".join(marks),
            "paper verdict": "reference" if method == "scratch" else
            separation(p["mean"].value, p["ci99"].value, ref["mean"].value, ref["ci99"].value)}


def table6_rows(summaries: list[Summary], setups: dict[str, str]) -> list[dict]:
    """One row per method: our statistics (diversity.stats), the verdict against Scratch, the paper's row."""
    by = {s.method: s for s in summaries}
    if "scratch" not in by:
        raise UserError("Table 6 compares every method with scratch, but the runs hold no scratch run; train scratch runs")
    ref = by["scratch"]
    rows = []
    for s in summaries:
        verdict = "reference" if s.method == "scratch" else (
            f"{separation(s.mean, s.ci99_z, ref.mean, ref.ci99_z)} (t: {separation(s.mean, s.ci99_t, ref.mean, ref.ci99_t)})")
        rows.append({"method": TABLE6_ROWS.get(s.method, s.method), "n": s.n, "mean": s.mean, "std": s.std,
                     "ErrMargin": s.err_margin, "99% (z)": s.ci99_z, "99% (t)": s.ci99_t,
                     "Welch p vs Scratch": s.welch_p, "verdict vs Scratch": verdict,
                     **paper_columns(s.method), "setup": setups[s.method]})
    return rows


def pooled_runs(runs_dir: Path, milestone: int | None, runs: int) -> tuple[dict[str, list[RunCheckpoint]], dict]:
    """The runs of every method in the paper's row order (others after) and their (name, config.json) pairs;
    each row and the whole table checked poolable."""
    groups = discover_runs(runs_dir, milestone)
    groups = {m: groups[m] for m in TABLE6_ROWS if m in groups} | {m: g for m, g in groups.items() if m not in TABLE6_ROWS}
    require_runs(groups, runs)
    configs = {m: [(it.run_dir.name, read_run_config(it.run_dir)) for it in g] for m, g in groups.items()}
    check_table(configs)
    return groups, configs


def make_table6(runs_dir: Path, out_dir: Path, cfg: ScoreConfig, runs: int, device: torch.device,
                milestone: int | None = None, quiet: bool = False) -> list[Path]:
    """Score the final (or milestone) checkpoint of every run, then write table6.{md,csv,tex,json}, the
    per-run scores (scores.json / scores.csv) and table6.png; returns every path written."""
    groups, configs = pooled_runs(runs_dir, milestone, runs)
    loaded = load_all([it for g in groups.values() for it in g])
    scores = score_checkpoints(loaded, cfg, device, quiet)
    per_run = {m: [s.score for s in scores if s.method == m] for m in groups}
    summaries = summarize_groups(per_run)
    images = cfg.batches * cfg.batch_size
    paths = write_results(out_dir, cfg, scores, summaries, None, str(device))
    label = {m: TABLE6_ROWS.get(m, m) for m in groups}
    plot_scores({label[m]: v for m, v in per_run.items()}, [replace(s, method=label[s.method]) for s in summaries],
                out_dir / "table6.png", f"NASWOT v1 score (Table 6), {cfg.batches} x {cfg.batch_size} images")
    caption = (f"Table 6 (reproduced): NASWOT v1 score of {images} training images ({cfg.batches} shared batch(es) of "
               f"N = {cfg.batch_size}, {BN_CAPTION[cfg.bn_mode]}), n runs per method; std with ddof 1, ErrMargin = "
               f"std / sqrt(n), 99% half-widths 2.576 x ErrMargin (z, as the paper) and Student t; verdict = 99% "
               f"intervals disjoint from Scratch's. {table_setup(configs, images)}. Paper columns: Park et al. 2020, "
               f"Table 6 (n = {TABLE6_RUNS}), every cell as printed; [k]: a printed ErrMargin or 99% that std / "
               f"sqrt({TABLE6_RUNS}) and 2.576 x that do not give.")
    setups = {m: setup_line(c[0][1], images) for m, c in configs.items()}
    notes = [f"[{i + 1}] {text}" for i, (_, text) in enumerate(paper_footnotes())]
    return [*paths, out_dir / "table6.png",
            *write_table(out_dir, "table6", table6_rows(summaries, setups), COLUMNS, caption,
                        digits={"paper mean": 2, "Welch p vs Scratch": 4}, footnotes=notes, data_columns=["setup"])]
