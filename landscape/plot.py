"""``python -m landscape.plot CKPT --out surf.vtk``: the filter-normalized loss surface of a checkpoint.

Li et al.'s defaults: 51 x 51 grid on [-1, 1]^2, Gaussian directions (seed 123) with filter normalization,
biases and BN parameters ignored, BN statistics frozen, eval mode, mean cross-entropy and accuracy over the
whole un-augmented training split. The output suffix picks the format: .vtk (legacy), .vts, .vtp, .h5 (Li's
layout), .npz. The computation is stored in OUT with suffix .npz and resumes when re-run (only missing points
are computed). Under ``torchrun`` the grid points are shared among the ranks.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from landscape.compute import EngineOptions, compute_surface
from landscape.config import GridSpec
from landscape.render import contour_png, render_png
from landscape.store import Surface, store_path, write_li_h5
from landscape.vtkio import VTK_SUFFIXES, trajectory_polyline, write_vtk
from training.checkpoint import atomic_write, atomic_write_text, load_model
from training.cli import Parser, add_common_flags, log, resolve_device, run_cli
from training.data import load_split
from training.distributed import init_distributed, shutdown
from training.errors import UserError

D = GridSpec()
SUFFIXES = (*VTK_SUFFIXES, ".h5", ".npz")


def build_parser() -> Parser:
    p = Parser(prog="python -m landscape.plot", description=__doc__.split("\n\n")[0],
               epilog="Example: python -m landscape.plot runs/scratch-s0/ckpt_e160.pt --out surf.vtk --png surf.png")
    p.add_argument("checkpoint", help="orthokd checkpoint (the surface's centre theta*)")
    p.add_argument("--out", required=True, help=f"output file; suffix picks the format: {', '.join(SUFFIXES)}")
    p.add_argument("--steps", type=int, nargs="+", default=[D.xsteps], metavar="N",
                   help="grid points per axis: N (square) or NX NY [51]")
    p.add_argument("--xrange", type=float, nargs=2, default=[D.xmin, D.xmax], metavar=("MIN", "MAX"), help="x range [-1 1]")
    p.add_argument("--yrange", type=float, nargs=2, default=[D.ymin, D.ymax], metavar=("MIN", "MAX"), help="y range [-1 1]")
    p.add_argument("--1d", dest="one_d", action="store_true", help="a 1-D curve along the x direction only")
    p.add_argument("--interpolate", metavar="CKPT_B", default=None,
                   help="1-D path theta = (1-alpha) A + alpha B from the checkpoint to CKPT_B (BN statistics "
                        "interpolated too); alpha over --xrange (default -0.5 1.5)")
    p.add_argument("--trajectory", metavar="RUN_DIR", default=None,
                   help="PCA directions of the run's milestone checkpoints around the checkpoint; the projected "
                        "path is drawn on the surface (and written as OUT_trajectory.vtp)")
    p.add_argument("--directions", metavar="FILE", default=None, help="reuse the directions of another surface (.npz)")
    p.add_argument("--dir-seed", type=int, default=D.dir_seed, help="seed of the random directions [123]")
    p.add_argument("--include-biasbn", action="store_true", help="also move biases and BN gamma/beta (filter-normalized)")
    p.add_argument("--split", choices=("train", "test"), default=D.split, help="evaluation split [train]")
    p.add_argument("--max-images", type=int, default=None, help="use only the first N images of the split [all]")
    p.add_argument("--dataset", default=None, help="dataset (default: the checkpoint's own)")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward pass [128 on CPU, 2048 on GPU]")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="evaluation precision [fp32]")
    p.add_argument("--no-fold-bn", action="store_true", help="evaluate the unfolded network (slower; for checking)")
    p.add_argument("--zmax", type=float, default=None, help="clip heights at this loss for VTK and pictures")
    p.add_argument("--log", action="store_true", help="heights ln(loss + 0.1) for VTK and pictures")
    p.add_argument("--zscale", type=float, default=1.0, help="multiply VTK heights by this (viewing only)")
    p.add_argument("--png", default=None, help="also write a 3-D render (pyvista off-screen, matplotlib fallback)")
    p.add_argument("--contour", default=None, help="also write a 2-D contour map PNG")
    p.add_argument("--sharpness", action="store_true",
                   help="write OUT_sharpness.json: Hessian lambda_max (power iteration), Hutchinson trace, flatness")
    p.add_argument("--sharpness-images", type=int, default=512, help="images for the Hessian estimates [512]")
    p.add_argument("--overwrite", action="store_true", help="discard a stored surface that does not match and start again")
    add_common_flags(p)
    return p


def grid_spec(a) -> GridSpec:
    steps = a.steps
    if len(steps) not in (1, 2) or min(steps) < 1:
        raise UserError("--steps takes N or NX NY, each at least 1")
    nx, ny = steps[0], steps[-1]
    one_d = a.one_d or a.interpolate is not None
    xr = a.xrange
    if a.interpolate is not None and xr == [D.xmin, D.xmax]:
        xr = [-0.5, 1.5]
    return GridSpec(xmin=xr[0], xmax=xr[1], xsteps=nx, ymin=a.yrange[0], ymax=a.yrange[1], ysteps=0 if one_d else ny,
                    dir_seed=a.dir_seed, include_biasbn=a.include_biasbn, split=a.split, max_images=a.max_images,
                    dataset=a.dataset, data_dir=a.data_dir)


def export(s: Surface, out: Path, a) -> list[Path]:
    written = [store_path(out)]
    if out.suffix in VTK_SUFFIXES:
        write_vtk(s, out, a.zmax, a.log, a.zscale)
        written.append(out)
        line = trajectory_polyline(s, a.zmax, a.log, a.zscale)
        if line is not None:
            tpath = out.with_name(out.stem + "_trajectory.vtp")
            atomic_write(tpath, lambda tmp: line.save(tmp), keep_suffix=True)
            written.append(tpath)
    elif out.suffix == ".h5":
        write_li_h5(s, out)
        written.append(out)
    title = f"{s.meta.get('method')} epoch {s.meta.get('epoch')}"
    if a.png:
        render_png(s, Path(a.png), a.zmax, a.log, title)
        written.append(Path(a.png))
    if a.contour and not s.is_1d:
        contour_png(s, Path(a.contour), a.zmax, a.log, title)
        written.append(Path(a.contour))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    out = Path(a.out)
    if out.suffix not in SUFFIXES:
        raise UserError(f"--out {out}: unknown suffix {out.suffix!r}; use one of {', '.join(SUFFIXES)}")
    spec = grid_spec(a)
    device = resolve_device(a.device)
    dist = init_distributed(device)
    try:
        opts = EngineOptions(batch_size=a.batch_size, bf16=a.dtype == "bf16", fold_bn=not a.no_fold_bn)
        s = compute_surface(Path(a.checkpoint), spec, store_path(out), device, opts,
                            directions_file=Path(a.directions) if a.directions else None,
                            trajectory=Path(a.trajectory) if a.trajectory else None,
                            interpolate=Path(a.interpolate) if a.interpolate else None,
                            overwrite=a.overwrite, quiet=a.quiet, dist=dist)
        if not dist.is_main:
            return 0
        written = export(s, out, a)
        centre = s.loss[s.centre_index()]
        print(f"surface {s.loss.shape} of {a.checkpoint}: centre loss {centre:.4f}, min {s.loss.min():.4f}, "
              f"max {s.loss.max():.4f}, cos(x, y) = {s.meta['cos_xy'] if s.meta['cos_xy'] is not None else 'n/a'}")
        if a.sharpness:
            from landscape.sharpness import sharpness_report

            model, ck = load_model(a.checkpoint)
            cfg = ck["config"]
            data = load_split(a.dataset or cfg.get("dataset", "cifar10"), a.split,
                              a.data_dir if a.data_dir is not None else cfg.get("data_dir"), a.sharpness_images)
            report = sharpness_report(model.to(device), data.normalized(device), data.labels.to(device), s)
            spath = out.with_name(out.stem + "_sharpness.json")
            atomic_write_text(spath, json.dumps({"checkpoint": a.checkpoint, **report}, indent=2) + "\n")
            written.append(spath)
            print("sharpness: " + ", ".join(f"{k} {v:.4g}" for k, v in report.items() if isinstance(v, float)))
        log("wrote " + ", ".join(map(str, written)), a.quiet)
        return 0
    finally:
        shutdown(dist)


if __name__ == "__main__":
    sys.exit(run_cli(main))
