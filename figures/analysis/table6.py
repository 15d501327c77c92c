"""Table 6: NASWOT scores per method from run directories, beside the paper's published rows."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch

from diversity.config import ScoreConfig
from diversity.report import write_results
from diversity.score_figure import plot_scores
from diversity.scoring import load_all, score_checkpoints
from diversity.stats import Summary, summarize_groups
from figures.captions import setup_line, table_setup
from figures.paper import TABLE6, TABLE6_ROWS, TABLE6_RUNS
from figures.tables import write_table
from training.errors import UserError
from training.store.poolable import check_table
from training.store.rundir import RunCheckpoint, discover_runs, read_config, require_runs

COLUMNS = ["method", "n", "mean", "std", "ErrMargin", "99% (z)", "99% (t)", "Welch p vs Scratch", "verdict vs Scratch",
           "paper mean", "paper std", "paper ErrMargin", "paper 99%", "paper note", "paper verdict"]
# The same statistics with NASWOT's own design, one random batch per model (diversity.score --batch-mode per-model
# --batches 1): the batch-sampling noise then enters std and the intervals, as it did in the paper's.
PER_MODEL = {"mean": "1 batch/model mean", "std": "1 batch/model std", "ci99_z": "1 batch/model 99% (z)",
             "verdict": "1 batch/model verdict"}


BN_WORDS = {"train": " (batch statistics, Dropout off, on a copy of the model: NASWOT's harness; --bn-mode eval for "
                     "per-image gradients)",
            "eval": " (BN on running statistics, exact per-image gradients; --bn-mode train is NASWOT's harness)"}


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


def per_model_columns(summaries: list[Summary]) -> dict[str, dict]:
    """PER_MODEL columns of each method: mean, std, 99% (z) and the verdict against Scratch."""
    ref = next(s for s in summaries if s.method == "scratch")
    return {s.method: {PER_MODEL["mean"]: s.mean, PER_MODEL["std"]: s.std, PER_MODEL["ci99_z"]: s.ci99_z,
                       PER_MODEL["verdict"]: "reference" if s is ref else separation(s.mean, s.ci99_z, ref.mean,
                                                                                      ref.ci99_z)}
            for s in summaries}


def table6_rows(summaries: list[Summary], setups: dict[str, str],
                per_model: dict[str, dict] | None = None) -> list[dict]:
    """One row per method: our statistics (diversity.stats), the verdict against Scratch, the paper's row, and
    ``per_model``'s columns when given."""
    by = {s.method: s for s in summaries}
    if "scratch" not in by:
        raise UserError("Table 6 compares every method with scratch, but the runs hold no scratch run; train scratch "
                        "runs")
    ref = by["scratch"]
    rows = []
    for s in summaries:
        verdict = "reference" if s.method == "scratch" else (
            f"{separation(s.mean, s.ci99_z, ref.mean, ref.ci99_z)} (t: "
            f"{separation(s.mean, s.ci99_t, ref.mean, ref.ci99_t)})")
        rows.append({"method": TABLE6_ROWS.get(s.method, s.method), "n": s.n, "mean": s.mean, "std": s.std,
                     "ErrMargin": s.err_margin, "99% (z)": s.ci99_z, "99% (t)": s.ci99_t,
                     "Welch p vs Scratch": s.welch_p, "verdict vs Scratch": verdict,
                     **paper_columns(s.method), **(per_model or {}).get(s.method, {}), "setup": setups[s.method]})
    return rows


def pooled_runs(runs_dir: Path, milestone: int | None, runs: int) -> tuple[dict[str, list[RunCheckpoint]], dict]:
    """The runs of every method in the paper's row order (others after) and their (name, config.json) pairs;
    each row and the whole table checked poolable."""
    groups = discover_runs(runs_dir, milestone)
    groups = {m: groups[m] for m in TABLE6_ROWS if m in groups} | {
        m: g for m, g in groups.items() if m not in TABLE6_ROWS
    }
    require_runs(groups, runs)
    configs = {m: [(it.run_dir.name, read_config(it.run_dir, required=True)) for it in g] for m, g in groups.items()}
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
    single = score_checkpoints(loaded, replace(cfg, batch_mode="per-model", batches=1), device, quiet)
    per_model = per_model_columns(summarize_groups({m: [s.score for s in single if s.method == m] for m in groups}))
    images = cfg.batches * cfg.batch_size
    paths = write_results(out_dir, cfg, scores, summaries, None, str(device))
    label = {m: TABLE6_ROWS.get(m, m) for m in groups}
    plot_scores({label[m]: v for m, v in per_run.items()}, [replace(s, method=label[s.method]) for s in summaries],
                out_dir / "table6.png", f"NASWOT v1 score (Table 6), {cfg.batches} x {cfg.batch_size} images")
    caption = (f"Table 6 (reproduced): NASWOT v1 score of {images} training images ({cfg.batches} shared batch(es) of "
               f"N = {cfg.batch_size}, BatchNorm in {cfg.bn_mode} mode{BN_WORDS[cfg.bn_mode]}), "
               f"n runs per method; std with ddof 1, ErrMargin = std / sqrt(n), 99% half-widths 2.576 x ErrMargin (z, "
               f"as the paper) and Student t; verdict = 99% intervals disjoint from Scratch's. N: the paper does not "
               f"give it; its scores (each <= -N) give N <= 141, and {cfg.batch_size} is assumed. '1 batch/model' "
               f"columns: the same runs scored as NASWOT's harness does, each on one random batch of N of its own "
               "(drawn from the sha256 of its weights), so the batch-sampling noise is in std and the interval as in "
               "the "
               f"paper's; the shared batches leave it out. {table_setup(configs, images)}. Paper columns: Park et al. "
               f"2020, Table 6 (n = {TABLE6_RUNS}), every cell as printed; [k]: a printed ErrMargin or 99% that std / "
               f"sqrt({TABLE6_RUNS}) and 2.576 x that do not give.")
    setups = {m: setup_line(c[0][1], images) for m, c in configs.items()}
    notes = [f"[{i + 1}] {text}" for i, (_, text) in enumerate(paper_footnotes())]
    return [*paths, out_dir / "table6.png",
            *write_table(out_dir, "table6", table6_rows(summaries, setups, per_model), [*COLUMNS, *PER_MODEL.values()],
                        caption, digits={"paper mean": 2, "Welch p vs Scratch": 4}, footnotes=notes,
                        data_columns=["setup"])]
