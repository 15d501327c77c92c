"""Tables 1-3 (pruning x KD) from the schedule directories of the study (figures.pruning.plan), in the paper's layout.

Per pruning setting, rows Unpruned, Finetuned / Pre-Distill, Post-Distill, Pre-Post, Self-Distill, Surplus and
columns Baseline, Label KD, Feature KD (test accuracy %, mean +- sample std over seeds), each KD cell followed by its
gain over the row's Baseline in parentheses (Unpruned: KD - Scratch; pruned rows: schedule - Finetuned), and

    Surplus = (Self-Distill - Finetuned) - (Unpruned KD - Unpruned Scratch)      (figures.pruning.surplus)

computed per seed, then averaged. Every pruned row gives the parameters and MACs of its pruned networks (with the
change from the unpruned network), every cell the paper prints stands beside ours as printed (figures.paper; the
Baseline (paper) column holds its Scratch row), and the caption names the dataset, images, model, recipe and teachers.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from figures.captions import refuse_embedded_subset
from figures.cells import Accuracy, accuracy_caption, cell, numbered, paper_numbers, paper_text
from figures.paper import KD_COLUMNS, PRUNING_PUBLISHED, PRUNING_ROWS, PRUNING_TABLES, PRUNING_TITLES, PruneSetting
from figures.pruning.plan import PruneStudySpec, network_note, schedule_cells, schedule_run
from figures.pruning.surplus import surplus
from figures.tables import write_table
from training.engine.schedules import SUMMARY
from training.errors import UserError
from training.store.poolable import describe_config
from training.store.rundir import read_config

Summaries = dict[tuple[str, str], list[dict[str, Any]]]  # (schedule, kd) -> one schedule.json per seed


def read_summaries(spec: PruneStudySpec, root: Path, setting: PruneSetting, table: int) -> Summaries:
    """Every cell's schedule.json, one per seed; a missing or unfinished one is one UserError naming the fix."""
    out: Summaries = {}
    for schedule, kd in schedule_cells(spec):
        for seed in spec.seeds:
            path = schedule_run(root, setting, schedule, kd, seed) / SUMMARY
            try:
                summary = json.loads(path.read_text())
            except (OSError, ValueError):
                raise UserError(f"{path} is missing or unreadable: run python -m figures.study --tables {table} with "
                                f"the same --out-dir and preset (it resumes) before making Table {table}, or give "
                                "figures.make the --preset and --runs of the study that made the runs") from None
            if summary["finetune"]["test_acc"] is None or summary["initial"]["test_acc"] is None:
                raise UserError(f"{path.parent} is unfinished; re-run python -m figures.study --tables {table}")
            if (summary["rule"], tuple(summary["pruning"]["requested"])) != (setting.rule, setting.remaining):
                raise UserError(f"{path.parent} was pruned by {summary['rule']} {summary['pruning']['requested']}, "
                                f"not {setting.rule} {list(setting.remaining)}; move it away and re-run the study")
            out.setdefault((schedule, kd), []).append(summary)
    return out


def _acc(summaries: list[dict], phase: str) -> list[float]:
    return [Accuracy(s[phase]["test_acc"], s[phase].get("best_test_acc")) for s in summaries]


def _count(n: float) -> str:
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _size(summaries: list[dict], key: str) -> tuple[str, list[int]]:
    """The pruned networks' ``key`` (params or macs): one value, or the range when pruning gave several
    (slimming's global threshold depends on the trained gammas), with the change from the unpruned network."""
    after = sorted({s["pruning"][f"{key}_after"] for s in summaries})
    before = summaries[0]["pruning"][f"{key}_before"]
    text = _count(after[0]) if len(after) == 1 else f"{_count(after[0])}-{_count(after[-1])}"
    change = [100.0 * (a - before) / before for a in (after[0], after[-1])]
    pct = f"{change[0]:+.1f}%" if len(after) == 1 else f"{change[1]:+.1f}% to {change[0]:+.1f}%"
    return f"{text} ({pct})", after


def setting_rows(table: int, index: int, setting: PruneSetting, cells: Summaries, kds: Sequence[str],
                 notes: list[str]) -> list[dict]:
    """The six rows of one pruning setting, each with the paper's printed cells beside ours ("X (paper)" columns;
    footnotes of contradicted cells appended to ``notes``)."""
    ft = cells[("finetuned", kds[0])]
    paper_label = PRUNING_TABLES[table][index].label
    base_row = {"Network": paper_label, "Model": setting.model}
    unpruned_params = ft[0]["pruning"]["params_before"]
    unpruned_macs = ft[0]["pruning"]["macs_before"]
    pre = [s for kd in kds for s in cells[("pre-distill", kd)]]
    unpruned, first, *distilled, surplus_row = PRUNING_ROWS  # the last three pruned rows: one schedule each
    # (row, Baseline values, KD values, the pruned schedules behind the row; none for Unpruned)
    spec_rows: list[tuple[str, list[float] | None, dict[str, list[float]], list[dict]]] = [
        (unpruned, _acc(ft, "initial"), {kd: _acc(cells[("pre-distill", kd)], "initial") for kd in kds}, []),
        (first, _acc(ft, "finetune"), {kd: _acc(cells[("pre-distill", kd)], "finetune") for kd in kds}, ft + pre),
        *((name, None, {kd: _acc(cells[(schedule, kd)], "finetune") for kd in kds},
           [s for kd in kds for s in cells[(schedule, kd)]])
          for name, schedule in zip(distilled, ("post-distill", "pre-post", "self-distill"), strict=True)),
    ]
    rows = []
    for name, baseline, kd_values, pruned in spec_rows:
        row = dict(base_row, Row=name)
        reference = _acc(ft, "initial") if name == unpruned else _acc(ft, "finetune")
        row["Baseline"], row["baseline"] = cell(baseline)
        row["runs"] = [s["finetune"]["dir"] for s in pruned] or [s["initial"]["dir"] for s in ft + pre]
        if pruned:
            (row["Params"], row["params"]), (row["MACs"], row["macs"]) = _size(pruned, "params"), _size(pruned, "macs")
        else:
            row["Params"], row["MACs"] = _count(unpruned_params), _count(unpruned_macs)
            row["params"], row["macs"] = [unpruned_params], [unpruned_macs]
        for kd in kds:
            row[KD_COLUMNS[kd]], row[kd] = cell(kd_values[kd], reference)
        rows.append(row)
    row = dict(base_row, Row=surplus_row, Params="", MACs="", Baseline="", baseline={},
               runs=[s["finetune"]["dir"] for s in ft + [s for kd in kds for s in cells[("self-distill", kd)]]])
    for kd in kds:
        per_seed = [surplus(sd["finetune"]["test_acc"], f["finetune"]["test_acc"], sd["initial"]["test_acc"],
                            f["initial"]["test_acc"]) for sd, f in zip(cells[("self-distill", kd)], ft)]
        row[KD_COLUMNS[kd]], row[kd] = cell(per_seed)
    rows.append(row)
    for row in rows:
        row["paper"] = {}
        for key, column in (("baseline", "Baseline"), *((kd, KD_COLUMNS[kd]) for kd in kds)):
            published = PRUNING_PUBLISHED.get((table, paper_label, row["Row"], key))
            row[f"{column} (paper)"] = paper_text(published, notes)
            if published:
                row["paper"][column] = paper_numbers(published)
    return rows


def caption(table: int, spec: PruneStudySpec, root: Path, cells: Summaries) -> str:
    """What every reader needs to judge the numbers: data and toy size, recipe, teachers, what the cells mean."""
    ft = cells[("finetuned", spec.kds[0])][0]
    cfg = read_config(Path(ft["initial"]["dir"]), required=True)
    if not spec.stand_ins:
        refuse_embedded_subset({Path(ft["initial"]["dir"]): cfg})
    stand_ins = ", ".join(dict.fromkeys(f"{s.model} for {s.network}" for s in spec.settings(table)))
    toy = (f"TOY SIZE, not the paper's setting: {cfg['dataset']} instead of CIFAR-100, stand-ins {stand_ins}. "
           if spec.stand_ins else "")
    n = len(spec.seeds)
    slim = PRUNING_TABLES[table][0].rule == "slimming"
    return (f"Table {table}: {PRUNING_TITLES[table]} x KD. {toy}{accuracy_caption(n)}; in parentheses the gain "
            f"over the Baseline "
            f"(Unpruned: over Scratch; pruned rows: over Finetuned). Finetuned / Pre-Distill: Baseline column = "
            f"Finetuned, KD columns = Pre-Distill. Surplus = (Self-Distill - Finetuned) - (Unpruned KD - Unpruned "
            f"Scratch). {'Unpruned = after sparsity training. ' if slim else ''}{network_note(spec, table)}"
            "Initial training: "
            f"{describe_config(cfg).split('; teacher')[0]}; fine-tuning {spec.finetune_epochs} epochs at lr 0.001; "
            f"teachers: a scratch network of each architecture (seed {spec.teacher_seed}); (paper) columns: Park et "
            f"al. 2020, Table {table}, every cell as printed, with its gain where the paper prints one "
            f"(figures/paper.py).")


def make_pruning_table(table: int, root: Path, out: Path, spec: PruneStudySpec) -> list[Path]:
    """Write tableN.{md,csv,tex,json} from the study's schedule directories under ``root``; returns the paths."""
    rows: list[dict] = []
    notes: list[str] = []
    first: Summaries | None = None
    for index, setting in enumerate(spec.settings(table)):
        cells = read_summaries(spec, root, setting, table)
        first = first or cells
        rows += setting_rows(table, index, setting, cells, spec.kds, notes)
    value_cols = ["Baseline", *(KD_COLUMNS[kd] for kd in spec.kds)]
    columns = ["Network", "Model", "Row", "Params", "MACs", *value_cols, *(f"{c} (paper)" for c in value_cols)]
    return write_table(out, f"table{table}", rows, columns, caption(table, spec, root, first),
                       footnotes=numbered(notes), data_columns=["baseline", *spec.kds, "params", "macs", "runs",
                                                                "paper"])
