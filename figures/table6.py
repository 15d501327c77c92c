"""Table 6: NASWOT scores per method from run directories, beside the paper's published rows (DESIGN §7-§8)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from diversity.config import ScoreConfig
from diversity.plot import plot_scores
from diversity.report import write_results
from diversity.runs import discover_runs, require_runs
from diversity.scoring import load_all, score_checkpoints
from diversity.stats import Summary, summarize_groups
from figures.paper import TABLE6, TABLE6_ROWS, TABLE6_RUNS, TABLE6_Z99
from figures.tables import write_table
from training.errors import UserError

COLUMNS = ["method", "n", "mean", "std", "ErrMargin", "99% (z)", "99% (t)", "Welch p vs Scratch", "verdict vs Scratch",
           "paper mean", "paper std", "paper 99% (z)", "paper verdict"]


def separation(mean: float, half: float, ref_mean: float, ref_half: float) -> str:
    """'higher' / 'lower' when the two 99% intervals are disjoint (Table 6's reading), else 'not separated'."""
    if any(math.isnan(v) for v in (mean, half, ref_mean, ref_half)):
        return "n/a"
    if mean - half > ref_mean + ref_half:
        return "higher"
    if mean + half < ref_mean - ref_half:
        return "lower"
    return "not separated"


def paper_half_width(method: str) -> float:
    return TABLE6_Z99 * TABLE6[method]["std"].value / math.sqrt(TABLE6_RUNS)


def table6_rows(summaries: list[Summary]) -> list[dict]:
    by = {s.method: s for s in summaries}
    if "scratch" not in by:
        raise UserError("Table 6 compares every method with scratch, but the runs hold no scratch run")
    ref = by["scratch"]
    rows = []
    for s in summaries:
        row = {"method": TABLE6_ROWS.get(s.method, s.method), "n": s.n, "mean": s.mean, "std": s.std,
               "ErrMargin": s.err_margin, "99% (z)": s.ci99_z, "99% (t)": s.ci99_t, "Welch p vs Scratch": s.welch_p,
               "verdict vs Scratch": "reference" if s.method == "scratch" else
               f"{separation(s.mean, s.ci99_z, ref.mean, ref.ci99_z)} (t: {separation(s.mean, s.ci99_t, ref.mean, ref.ci99_t)})"}
        if s.method in TABLE6:
            pm, ph = TABLE6[s.method]["mean"].value, paper_half_width(s.method)
            row.update({"paper mean": pm, "paper std": TABLE6[s.method]["std"].value, "paper 99% (z)": ph,
                        "paper verdict": "reference" if s.method == "scratch" else
                        separation(pm, ph, TABLE6["scratch"]["mean"].value, paper_half_width("scratch"))})
        rows.append(row)
    return rows


def make_table6(runs_dir: Path, out_dir: Path, cfg: ScoreConfig, runs: int, device: torch.device,
                milestone: int | None = None, quiet: bool = False) -> list[Path]:
    """Score the final (or milestone) checkpoint of every run, then write table6.{md,csv,tex} and the scores."""
    groups = discover_runs(runs_dir, milestone)
    groups = {m: groups[m] for m in TABLE6_ROWS if m in groups} | {m: g for m, g in groups.items() if m not in TABLE6_ROWS}
    require_runs(groups, runs)
    loaded = load_all([it for g in groups.values() for it in g])
    scores = score_checkpoints(loaded, cfg, device, quiet)
    per_run = {m: [s.score for s in scores if s.method == m] for m in groups}
    summaries = summarize_groups(per_run)
    paths = write_results(out_dir, cfg, scores, summaries, None, str(device))
    plot_scores(per_run, summaries, out_dir / "table6.png", "NASWOT v1 score (Table 6)")
    caption = (f"Table 6 (reproduced): NASWOT v1 score, N = {cfg.batch_size}, {cfg.batches} shared batch(es), "
               f"BN {cfg.bn_mode} mode; 99% half-widths with z = 2.576 (as the paper) and Student t; verdict = "
               "99% intervals disjoint from Scratch's. Paper columns: Park et al., Table 6 (n = 5).")
    return [*paths, out_dir / "table6.png", *write_table(out_dir, "table6", table6_rows(summaries), COLUMNS, caption)]
