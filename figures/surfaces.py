"""Tables 7-8: loss surfaces of each method at the end of each LR step, as multi-panel figures, VTK files,
animations and a sharpness table (DESIGN §6, §8)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from diversity.runs import discover_runs
from figures.paper import METHOD_LABELS, SURFACE_TABLES
from figures.tables import write_table
from landscape.compute import EngineOptions, compute_surface
from landscape.config import GridSpec
from landscape.render import animate, panels_png
from landscape.sharpness import sharpness_report
from landscape.store import Surface
from landscape.vtkio import write_vtk
from training.checkpoint import load_model
from training.data import load_split
from training.errors import UserError
from training.rundir import milestone_name


def surface_run(runs_dir: Path, method: str, seed: int) -> tuple[Path, list[int]]:
    """The run directory of ``method`` with ``seed`` and its milestone epochs (last epoch before each decay + final)."""
    groups = discover_runs(runs_dir)
    for it in groups.get(method, []):
        if it.seed == seed:
            cfg = json.loads((it.run_dir / "config.json").read_text())
            epochs = sorted({e for e in cfg["lr_milestones"] if e < cfg["epochs"]} | {cfg["epochs"]})
            missing = [milestone_name(e) for e in epochs if not (it.run_dir / milestone_name(e)).is_file()]
            if missing:
                raise UserError(f"run {it.run_dir} lacks milestone checkpoint(s) {', '.join(missing)}; finish it first")
            return it.run_dir, epochs
    raise UserError(f"no run of method {method} with seed {seed} under {runs_dir}; train it "
                    f"(python -m training.train --method {method} --seed {seed} --out-dir {runs_dir}/{method}-s{seed} ...)")


def surface_path(runs_dir: Path, method: str, seed: int, epoch: int) -> Path:
    return runs_dir / "surfaces" / f"{method}-s{seed}_e{epoch:03d}.npz"


def ensure_surface(runs_dir: Path, method: str, seed: int, epoch: int, spec: GridSpec, device: torch.device,
                   quiet: bool = True) -> Surface:
    run_dir, _ = surface_run(runs_dir, method, seed)
    return compute_surface(run_dir / milestone_name(epoch), spec, surface_path(runs_dir, method, seed, epoch), device,
                           EngineOptions(), quiet=quiet)


def make_surface_table(table: int, runs_dir: Path, out_dir: Path, spec: GridSpec, device: torch.device,
                       seed: int = 0, log_scale: bool = True, zmax: float | None = None,
                       sharpness_images: int = 512, quiet: bool = False) -> list[Path]:
    """tableN.png (rows = methods, columns = LR steps), tableN_<method>.gif, tableN_vtk/*.vts and
    tableN_sharpness.{md,csv,tex}; surfaces are computed (or resumed) under RUNS_DIR/surfaces/."""
    if table not in SURFACE_TABLES:
        raise UserError(f"--table {table} is not a surface table; choose one of {sorted(SURFACE_TABLES)}")
    methods = SURFACE_TABLES[table]
    runs = {m: surface_run(runs_dir, m, seed) for m in methods}  # every run checked before any work starts
    epochs = runs[methods[0]][1]
    for run_dir, run_epochs in runs.values():
        if run_epochs != epochs:
            raise UserError(f"run {run_dir} has milestones {run_epochs}, others {epochs}; Tables 7-8 need one schedule")
    grid: list[list[Surface]] = []
    rows = []
    for method in methods:
        run_dir = runs[method][0]
        row = [ensure_surface(runs_dir, method, seed, e, spec, device, quiet) for e in epochs]
        grid.append(row)
        for e, s in zip(epochs, row):
            model, ck = load_model(run_dir / milestone_name(e))
            cfg = ck["config"]
            data = load_split(cfg["dataset"], spec.split, cfg.get("data_dir"), sharpness_images)
            rep = sharpness_report(model.to(device), data.normalized(device), data.labels.to(device), s)
            rows.append({"method": METHOD_LABELS.get(method, method), "epoch": e, "train loss (centre)": rep["centre_loss"],
                         "lambda_max": rep["lambda_max"], "Hessian trace": rep["hessian_trace"],
                         "rise r=0.25": rep["rise_within_r0.25"], "rise r=0.5": rep["rise_within_r0.5"],
                         "area loss<=centre+0.1": rep["area_below_centre_plus_0.1"],
                         "area loss<=centre+1": rep["area_below_centre_plus_1"]})
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = [METHOD_LABELS.get(m, m) for m in methods]
    cols = [f"end of LR step {i + 1} (epoch {e})" for i, e in enumerate(epochs)]
    written = [out_dir / f"table{table}.png"]
    panels_png(grid, labels, cols, written[0], zmax, log_scale,
               f"Table {table} (reproduced): loss surfaces, {'ln(loss + 0.1)' if log_scale else 'loss'}, one colour scale")
    for method, label, row in zip(methods, labels, grid):
        gif = out_dir / f"table{table}_{method}.gif"
        animate(row, [f"{label}, {c}" for c in cols], gif, zmax, log_scale)
        written.append(gif)
        for e, s in zip(epochs, row):
            vts = out_dir / f"table{table}_vtk" / f"{method}_e{e:03d}.vts"
            write_vtk(s, vts, zmax, log_scale)
            written.append(vts)
    caption = (f"Table {table} sharpness: Hessian top eigenvalue (power iteration) and Hutchinson trace on "
               f"{sharpness_images} training images; loss rise within radius r of the centre and plane area below "
               "centre loss + delta, from the surfaces.")
    written += write_table(out_dir, f"table{table}_sharpness", rows, list(rows[0]), caption, digits=4)
    return written
