"""python -m landscape.plot CKPT --out surf.vtk: the filter-normalized loss surface of a checkpoint.

Li et al.'s defaults: 51 x 51 grid on [-1, 1]^2, Gaussian directions (seed 123) with filter normalization,
biases and BN parameters ignored, BN statistics frozen, eval mode, mean cross-entropy and accuracy over the
whole un-augmented training split, images normalized as the checkpoint was trained. The output suffix picks
the format: .vtk (legacy), .vts, .vtp, .h5 (Li's layout, [iy, ix], with OUT_directions.h5 beside it), .npz.
The computation is stored in OUT with suffix .npz and resumes when re-run (only points not yet computed are
computed; one process at a time per store). Under torchrun the grid points are shared among the ranks.

Any other classifier: --model torchvision:NAME | timm:NAME | package.module:factory (with --model-kwargs JSON and
--weights FILE) on --dataset cifar10/cifar100/npz (normalized with the dataset's statistics unless --transform,
--resize, --crop, --mean, --std say otherwise) or imagefolder (--data-dir, with the model's own transform); the
surface is landscape.surface of that model (landscape.api).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from landscape.api import surface
from landscape.compute import EngineOptions, compute_surface
from landscape.config import GridSpec
from landscape.engine import DEFAULT_POINTS_PER_FORWARD
from landscape.formats.dispatch import SUFFIXES, check_suffix, save_as
from landscape.pictures.render import contour_levels, contour_png, render_png
from landscape.record import Surface, images_used, store_path
from landscape.sharpness import checkpoint_sharpness, describe_images, hessian_images, sharpness, summary_line
from training.cli.common import (
    GRID_STEPS,
    Parser,
    add_common_flags,
    finite_float,
    nonempty,
    nonnegative_int,
    output_file,
    positive_float,
    positive_int,
    run_cli,
)
from training.cli.model_flags import add_model_flags, refuse_model_flags_without_model
from training.errors import UserError
from training.external.data import images_for_model
from training.external.models import model_from_flags
from training.log import log
from training.runtime.device import resolve_device
from training.runtime.distributed import init_distributed, shutdown
from training.store.files import atomic_write_text, strict_json

D = GridSpec()


def build_parser() -> Parser:
    p = Parser(prog="python -m landscape.plot", description=__doc__.split("\n\n")[0],
               epilog="Example: python -m landscape.plot runs/scratch-s0/ckpt_e160.pt --out surf.vtk --png surf.png")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="orthokd checkpoint (the surface's centre theta*); or --model for any other classifier")
    p.add_argument("--out", type=output_file, required=True, help="output file; suffix picks the format: "
                                                                  f"{', '.join(SUFFIXES)}")
    p.add_argument("--steps", type=GRID_STEPS, nargs="+", default=[D.xsteps], metavar="N",
                   help="grid points per axis: N (square) or NX NY [51]")
    p.add_argument("--xrange", type=finite_float, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="x range, MIN < MAX (equal only with one point) [-1 1; with --trajectory: fitted to the path]")
    p.add_argument("--yrange", type=finite_float, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="y range, MIN < MAX [-1 1; with --trajectory: fitted to the path]")
    p.add_argument("--1d", dest="one_d", action="store_true", help="a 1-D curve along the x direction only")
    p.add_argument("--interpolate", metavar="CKPT_B", default=None,
                   help="1-D path theta = (1-alpha) A + alpha B from the checkpoint to CKPT_B (BN statistics "
                        "interpolated too); alpha over --xrange (default -0.5 1.5)")
    p.add_argument("--trajectory", metavar="RUN_DIR", default=None,
                   help="PCA (mean-centred, as Li et al.) of the run's ckpt_e*.pt checkpoints around the checkpoint; "
                        "the projected path is drawn on the surface (and written as OUT_trajectory.vtp); without "
                        "--xrange/--yrange the grid spans the path plus 20%% each side")
    p.add_argument("--directions", metavar="FILE", default=None,
                   help="reuse directions: another surface (.npz) or a Li et al. direction file (.h5)")
    p.add_argument("--dir-seed", type=nonnegative_int, default=D.dir_seed, help="seed of the random directions, >= 0 "
                                                                                "[123]")
    p.add_argument("--include-biasbn", action="store_true",
                   help="also move biases and BN gamma/beta, along d = w (Li et al. without ignore=biasbn)")
    p.add_argument("--split", choices=("train", "test"), default=D.split, help="evaluation split [train]")
    p.add_argument("--max-images", type=positive_int, default=None, help="use only the first N images of the split "
                                                                         "[all]")
    p.add_argument("--dataset", type=nonempty, default=None,
                   help="dataset: cifar10, cifar100, npz, or with --model also imagefolder [the checkpoint's own; "
                        "with --model: cifar10]")
    p.add_argument("--batch-size", type=positive_int, default=None, help="images per forward pass [128 on CPU, 2048 on "
                                                                         "GPU]")
    p.add_argument("--dtype", choices=("fp32", "tf32", "bf16"), default="fp32",
                   help="evaluation precision, recorded in the surface's metadata: fp32 = IEEE (TF32 off), tf32 = "
                        "TF32 convolutions/matmuls (CUDA), bf16 = autocast (faster; its measured deviation from fp32 "
                        "is in the README's Loss surfaces section) [fp32]")
    p.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True,
                   help="cuDNN autotuning (CUDA), recorded in the metadata [on]")
    p.add_argument("--no-fold-bn", action="store_true", help="evaluate the unfolded network (slower; for checking)")
    p.add_argument("--engine", choices=("orthokd", "loss-landscapes"), default="orthokd",
                   help="orthokd = this package's engine (resumable, folded BN, vmapped points); loss-landscapes = "
                        "the same surface through the loss-landscapes library's planar_interpolation, a cross-check "
                        "(2-D, one process, every point recomputed, slower) [orthokd]")
    p.add_argument(
        "--points-per-forward",
        type=positive_int,
        default=None,
        metavar="P",
        help="grid points evaluated together in one vmapped forward (torch.func): the same results to "
        "float rounding, memory grows with P x --batch-size [the best measured by "
        "bench/landscape_speed.py: "
        + ", ".join(f"{v} on {k}" for k, v in DEFAULT_POINTS_PER_FORWARD.items())
        + "; 1 on other devices]",
    )
    p.add_argument("--zmax", type=positive_float, default=None,
                   help="clip the loss at this value for VTK heights and pictures (before --log, as Li et al.)")
    p.add_argument("--log", action="store_true", help="heights ln(min(loss, zmax) + 0.1) for VTK and pictures")
    p.add_argument("--zscale", type=positive_float, default=None,
                   help="multiply VTK heights by this (viewing only) [automatic: height extent = 0.5 x the larger "
                        "of the x and y extents; the factor is stored as field data z_scale]")
    p.add_argument("--png", type=output_file, default=None, help="also write a 3-D render (pyvista off-screen, "
                                                                 "matplotlib fallback)")
    p.add_argument("--contour", type=output_file, default=None, help="also write a 2-D contour map PNG")
    p.add_argument("--vmin", type=finite_float, default=None,
                   help="contour levels from VMIN to VMAX every VLEVEL, on the height scale (Li et al.: 0.1 10 0.5, "
                        "the defaults for any of the three left out) [21 levels, log-spaced in loss]")
    p.add_argument("--vmax", type=finite_float, default=None, help="upper end of the contour levels (see --vmin)")
    p.add_argument("--vlevel", type=positive_float, default=None, help="contour spacing (see --vmin)")
    p.add_argument("--sharpness", action="store_true",
                   help="write OUT_sharpness.json: the Hessian's top eigenvalue (Lanczos) and trace (Hutch++, to a "
                        "2%% standard error) at the checkpoint, and the surface's flatness in grid cells")
    p.add_argument("--sharpness-images", type=positive_int, default=512, metavar="N",
                   help="images for the Hessian numbers: the surface's own when it used at most N, else the first N "
                        "of the split [512]")
    p.add_argument("--overwrite", action="store_true", help="discard a stored surface that does not match and start "
                                                            "again")
    add_model_flags(p)
    add_common_flags(p)
    return p


def _grid_spec(a) -> GridSpec:
    steps = a.steps
    if len(steps) not in (1, 2):
        raise UserError("--steps takes N or NX NY, each at least 1")
    nx, ny = steps[0], steps[-1]
    one_d = a.one_d or a.interpolate is not None
    xr = a.xrange or ([-0.5, 1.5] if a.interpolate is not None else [D.xmin, D.xmax])
    yr = a.yrange or [D.ymin, D.ymax]
    return GridSpec(xmin=xr[0], xmax=xr[1], xsteps=nx, ymin=yr[0], ymax=yr[1], ysteps=0 if one_d else ny,
                    dir_seed=a.dir_seed, include_biasbn=a.include_biasbn, split=a.split, max_images=a.max_images,
                    dataset=a.dataset, data_dir=a.data_dir)


def _export(s: Surface, out: Path, a) -> list[Path]:
    """Write the requested files from a computed surface: ``out`` in its suffix's format (save_as: the store
    itself for .npz), the 3-D render and the contour map."""
    levels = _picture_levels(s, a)
    written = [store_path(out)]
    if out.suffix != ".npz":
        written += save_as(s, out, a.zmax, a.log, a.zscale)
    if a.png:
        render_png(s, Path(a.png), a.zmax, a.log)
        written.append(Path(a.png))
    if a.contour and not s.is_1d:
        contour_png(s, Path(a.contour), a.zmax, a.log, levels=levels)
        written.append(Path(a.contour))
    return written


def _picture_levels(s: Surface | None, a):
    """Check the picture flags (--vmin < --vmax, at least two levels); the contour levels for ``s``, or None
    for the automatic ones (also None when ``s`` is None: a check before computing)."""
    if a.vmin is None and a.vmax is None and a.vlevel is None:
        return None
    levels = contour_levels(s, a.zmax, a.log, a.vmin, a.vmax, a.vlevel)
    return levels if s is not None else None


def _check_source(a) -> None:
    """Exactly one of a checkpoint and --model; the flags that need an orthokd checkpoint refused with --model."""
    refuse_model_flags_without_model(vars(a))
    if a.model is None and a.transform is not None:
        raise UserError("--transform applies to --model only; orthokd checkpoints carry their own normalization")
    if (a.checkpoint is None) == (a.model is None):
        raise UserError("give an orthokd CHECKPOINT or --model SPEC (one of the two)")
    if a.model is not None and (a.trajectory or a.interpolate):
        raise UserError("--trajectory and --interpolate need orthokd checkpoints; with --model use random directions "
                        "or --directions")


def _model_name(a) -> str:
    """--model with its --model-kwargs, so titles and metadata tell two builds of one factory apart."""
    return a.model + (f" {json.dumps(a.model_kwargs, sort_keys=True)}" if a.model_kwargs else "")


def _model_surface(a, spec: GridSpec, out: Path, device, opts: EngineOptions, dist):
    """The surface of --model on its images (landscape.surface); returns (surface, model, images)."""
    data = images_for_model(a.dataset, spec.split, a.data_dir, spec.max_images, a.transform, a.resize, a.crop,
                            a.mean, a.std)
    model = model_from_flags(a.model, a.model_kwargs, a.weights, data.images[:2], data.num_classes)
    s = surface(model, (data.images, data.labels), steps=(spec.xsteps, max(spec.ysteps, 1)),
                xrange=(spec.xmin, spec.xmax), yrange=None if spec.is_1d else (spec.ymin, spec.ymax),
                directions=a.directions, dir_seed=spec.dir_seed, include_biasbn=spec.include_biasbn, device=device,
                store=store_path(out), options=opts, name=_model_name(a), description=data.description,
                split=spec.split, overwrite=a.overwrite, quiet=a.quiet, dist=dist)
    return s, model, data


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    _check_source(a)
    _picture_levels(None, a)  # bad --vmin/--vmax/--vlevel are refused before any point is computed
    out = Path(a.out)
    check_suffix(out)
    spec = _grid_spec(a)
    device = resolve_device(a.device)
    dist = init_distributed(device)  # binds this rank's GPU before the process group exists
    try:
        opts = EngineOptions(batch_size=a.batch_size, bf16=a.dtype == "bf16", tf32=a.dtype == "tf32",
                             cudnn_benchmark=a.cudnn_benchmark, fold_bn=not a.no_fold_bn,
                             points_per_forward=a.points_per_forward, engine=a.engine)
        if a.model is not None:
            s, model, data = _model_surface(a, spec, out, device, opts, dist)
        else:
            s = compute_surface(Path(a.checkpoint), spec, store_path(out), device, opts,
                                directions_file=Path(a.directions) if a.directions else None,
                                trajectory=Path(a.trajectory) if a.trajectory else None,
                                interpolate=Path(a.interpolate) if a.interpolate else None,
                                fit_trajectory=a.xrange is None and a.yrange is None,
                                overwrite=a.overwrite, quiet=a.quiet, dist=dist)
        if not dist.is_main:
            return 0
        written = _export(s, out, a)
        centre = s.loss[s.centre_index()]
        print(f"surface {s.loss.shape} of {a.checkpoint or a.model}: centre loss {centre:.4f}, min {s.loss.min():.4f}, "
              f"max {s.loss.max():.4f}, cos(x, y) = {s.meta['cos_xy'] if s.meta['cos_xy'] is not None else 'n/a'}")
        if a.sharpness:
            if a.model is None:
                report, hessian_data = checkpoint_sharpness(a.checkpoint, a.sharpness_images, split=a.split,
                                                            dataset=a.dataset, data_dir=a.data_dir, surface=s,
                                                            device=device)
            else:  # the surface's own images: hessian_images is at most their number
                n = hessian_images(s, a.sharpness_images)
                report = sharpness(model, (data.images[:n], data.labels[:n]), surface=s, max_images=None, device=device)
                hessian_data = describe_images(data.description, a.split, n)
            same = report["images"] == images_used(s.meta)
            spath = out.with_name(out.stem + "_sharpness.json")
            atomic_write_text(
                spath,
                strict_json(
                    {
                        "checkpoint": a.checkpoint,
                        "model": a.model,
                        "hessian_data": hessian_data,
                        "surface_data": s.meta.get("data"),
                        "same_images": same,
                        **report,
                    },
                    indent=2,
                )
                + "\n",
            )
            written.append(spath)
            print(summary_line(report, same))
        log("wrote " + ", ".join(map(str, written)), a.quiet)
        return 0
    finally:
        shutdown(dist)


if __name__ == "__main__":
    sys.exit(run_cli(main))
