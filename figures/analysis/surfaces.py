"""Tables 7-8: loss surfaces of each method at the end of each LR step, as multi-panel figures, VTK files,
animations, and two sharpness tables: Hessian numbers on the sharpness images, flatness on the surface images."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from figures.analysis.hessian import HessianSettings, hessian_cache, hessian_numbers
from figures.captions import setup_line, table_setup
from figures.paper import SURFACE_TABLES
from figures.tables import write_table
from landscape.compute import EngineOptions, compute_surface
from landscape.config import GridSpec
from landscape.formats.paraview import script_path
from landscape.formats.vtk_files import write_vtk
from landscape.pictures.panels import animate, panels_png
from landscape.record import Surface
from landscape.sharpness import flatness
from training.config import milestone_epochs
from training.errors import UserError
from training.store.poolable import check_table
from training.store.rundir import discover_runs, milestone_name, read_config


def rise_label(cells: int) -> str:
    """The flatness table's column for the loss rise within ``cells`` grid cells of the centre."""
    return f"rise within {cells} cell{'s' if cells > 1 else ''}"


HESSIAN_COLUMNS = [
    "method", "epoch", "images", "centre loss", "lambda_max", "lambda_max iterations", "lambda_max converged",
    "Hessian trace", "trace SE", "Hutchinson samples", "Hutch++ sketch", "trace converged",
]
FLATNESS_CELLS = (1, 2, 5)  # rise radii in grid cells
FLATNESS_DELTAS = (0.1, 0.5, 1)  # basin thresholds: loss <= centre loss + delta
FLATNESS_COLUMNS = ["method", "epoch", "surface images", "surface centre loss",
                    *[rise_label(k) for k in FLATNESS_CELLS],
                    *[f"basin cells below centre + {d:g}" for d in FLATNESS_DELTAS]]


def surface_run(runs_dir: Path, method: str, seed: int) -> tuple[Path, list[int]]:
    """The run directory of ``method`` with ``seed`` and its milestone epochs (last epoch before each decay + final)."""
    groups = discover_runs(runs_dir)
    for it in groups.get(method, []):
        if it.seed == seed:
            cfg = read_config(it.run_dir, required=True)
            epochs = milestone_epochs(cfg["lr_milestones"], cfg["epochs"])
            missing = [milestone_name(e) for e in epochs if not (it.run_dir / milestone_name(e)).is_file()]
            if missing:
                raise UserError(f"run {it.run_dir} lacks milestone checkpoint(s) {', '.join(missing)}; finish it first")
            return it.run_dir, epochs
    raise UserError(f"no run of method {method} with seed {seed} under {runs_dir}; train it "
                    f"(python -m training.train --method {method} --seed {seed} --out-dir {runs_dir}/{method}-s{seed} "
                    "...)")


def surface_path(runs_dir: Path, method: str, seed: int, epoch: int) -> Path:
    return runs_dir / "surfaces" / f"{method}-s{seed}_e{epoch:03d}.npz"


def run_surface(run_dir: Path, runs_dir: Path, method: str, seed: int, epoch: int, spec: GridSpec,
                device: torch.device, quiet: bool = True) -> Surface:
    """The surface of ``run_dir``'s checkpoint of ``epoch``, computed or resumed in its store under
    RUNS_DIR/surfaces/."""
    return compute_surface(run_dir / milestone_name(epoch), spec, surface_path(runs_dir, method, seed, epoch), device,
                           EngineOptions(), quiet=quiet)


def ensure_surface(runs_dir: Path, method: str, seed: int, epoch: int, spec: GridSpec, device: torch.device,
                   quiet: bool = True) -> Surface:
    """run_surface of the run of ``method`` with ``seed``, found under ``runs_dir`` (surface_run)."""
    run_dir, _ = surface_run(runs_dir, method, seed)
    return run_surface(run_dir, runs_dir, method, seed, epoch, spec, device, quiet)


def table_runs(table: int, runs_dir: Path, seed: int) -> tuple[dict[str, Path], list[int], dict[str, dict]]:
    """Run directory of every row of ``table``, the shared milestone epochs and each run's config.json; every
    run checked (present, finished, poolable into one table) before any work starts."""
    if table not in SURFACE_TABLES:
        raise UserError(f"--table {table} is not a surface table; choose one of {sorted(SURFACE_TABLES)}")
    found = {m: surface_run(runs_dir, m, seed) for m in SURFACE_TABLES[table]}
    configs = {m: read_config(run_dir, required=True) for m, (run_dir, _) in found.items()}
    check_table({m: [(found[m][0].name, cfg)] for m, cfg in configs.items()})
    epochs = next(iter(found.values()))[1]
    return {m: run_dir for m, (run_dir, _) in found.items()}, epochs, configs


def hessian_row(label: str, epoch: int, rep: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    return {"method": label, "epoch": epoch, "images": rep["images"], "centre loss": rep["centre_loss"],
            "lambda_max": rep["lambda_max"], "lambda_max iterations": rep["lambda_max_iterations"],
            "lambda_max converged": rep["lambda_max_converged"], "Hessian trace": rep["hessian_trace"],
            "trace SE": rep["hessian_trace_se"], "Hutchinson samples": rep["hutchinson_samples"],
            "Hutch++ sketch": rep["hutchpp_sketch"],
            "trace converged": rep["trace_converged"], "setup": setup_line(cfg, rep["images"])}


def flatness_row(label: str, epoch: int, s: Surface, cfg: dict[str, Any]) -> dict[str, Any]:
    f = flatness(s)
    return {"method": label, "epoch": epoch, "surface images": f["surface_images"],
            "surface centre loss": f["surface_centre_loss"],
            **{rise_label(k): f[f"rise_within_{k}_cells"] for k in FLATNESS_CELLS},
            **{f"basin cells below centre + {d:g}": f[f"basin_area_below_centre_plus_{d:g}"] for d in FLATNESS_DELTAS},
            "setup": setup_line(cfg, f["surface_images"])}


def make_surface_table(table: int, runs_dir: Path, out_dir: Path, spec: GridSpec, device: torch.device,
                       seed: int = 0, log_scale: bool = True, zmax: float | None = None,
                       sharpness: HessianSettings = HessianSettings(), quiet: bool = False) -> list[Path]:
    """tableN.png (rows = the paper's methods, columns = LR steps), tableN_<method>.gif, tableN_vtk/*.vts (each
    with its ParaView script), tableN_hessian.{md,csv,tex,json} and tableN_flatness.{md,csv,tex,json}; surfaces
    are computed (or resumed) under RUNS_DIR/surfaces/. Returns every path written."""
    runs, epochs, configs = table_runs(table, runs_dir, seed)
    labels = SURFACE_TABLES[table]
    grid: list[list[Surface]] = []
    hessian, flat = [], []
    for method, label in labels.items():
        row = [run_surface(runs[method], runs_dir, method, seed, e, spec, device, quiet) for e in epochs]
        grid.append(row)
        for e, s in zip(epochs, row):
            cache = hessian_cache(surface_path(runs_dir, method, seed, e))
            hessian.append(hessian_row(label, e, hessian_numbers(runs[method] / milestone_name(e), sharpness,
                                                                 device, cache), configs[method]))
            flat.append(flatness_row(label, e, s, configs[method]))
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = [f"end of LR step {i + 1} (epoch {e})" for i, e in enumerate(epochs)]
    surface_images = flat[0]["surface images"]
    written = [out_dir / f"table{table}.png"]
    panels_png(grid, list(labels.values()), cols, written[0], zmax, log_scale,
               f"Table {table} (reproduced): loss surfaces on {surface_images} training images, "
               f"{'ln(loss + 0.1)' if log_scale else 'loss'}, one colour scale")
    for (method, label), row in zip(labels.items(), grid):
        gif = out_dir / f"table{table}_{method}.gif"
        animate(row, [f"{label}, {c}" for c in cols], gif, zmax, log_scale)
        written.append(gif)
        for e, s in zip(epochs, row):
            vts = out_dir / f"table{table}_vtk" / f"{method}_e{e:03d}.vts"
            write_vtk(s, vts, zmax, log_scale)
            written += [vts, script_path(vts)]
    runs_note = f"{table_setup({m: [(runs[m].name, c)] for m, c in configs.items()})} (seed {seed} of each method)."
    written += write_table(
        out_dir, f"table{table}_hessian", hessian, HESSIAN_COLUMNS,
        f"Table {table} Hessian: cross-entropy at the checkpoint (eval mode, BN statistics frozen) on the first "
        f"{sharpness.images} training images; every number of a row on those same images: centre loss, "
        f"{sharpness.describe()}; iterations and probes used, converged or not, and the trace's standard error "
        f"beside each value. {runs_note}", digits=4, data_columns=["setup"])
    written += write_table(
        out_dir, f"table{table}_flatness", flat, FLATNESS_COLUMNS,
        f"Table {table} flatness, from the loss surfaces on the first {surface_images} training images "
        f"({spec.xsteps}x{spec.ysteps} grid on [{spec.xmin:g}, {spec.xmax:g}] x [{spec.ymin:g}, {spec.ymax:g}], "
        "filter-normalized directions): centre loss, largest rise within k grid cells of the centre, and the number "
        f"of grid cells with loss <= centre + delta connected to the centre. {runs_note}", digits=4,
        data_columns=["setup"])
    return written
