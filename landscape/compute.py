"""Compute (or resume) a surface of a checkpoint: directions, data, sharding over torchrun ranks,
an exclusive lock on the store, periodic atomic saves."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

from landscape.config import GridSpec
from landscape.directions import Direction, cosine, difference, float_state, pca_directions, random_directions
from landscape.engine import Loss, SurfaceEngine
from landscape.formats.li_h5 import is_li_direction_file, read_li_directions
from landscape.record import Surface, check_resumable, load_surface, save_surface
from training.data.datasets import checkpoint_split
from training.errors import UserError
from training.log import log
from training.runtime.backends import backend_settings
from training.runtime.distributed import DistInfo
from training.store.checkpoint import load_model
from training.store.files import provenance, sha256_file
from training.store.lock import exclusive_lock

TRAJECTORY_MARGIN = 0.2  # a fitted grid spans [min - m, max + m], m = this fraction of the path's extent


@dataclass(frozen=True)
class EngineOptions:
    batch_size: int | None = None  # images per forward (None: 128 on CPU, 2048 on GPU); does not change results
    bf16: bool = False  # bf16 autocast (fp32 difference reported by the bench)
    tf32: bool = False  # TF32 convolutions/matmuls on CUDA; off = IEEE fp32 (set explicitly, whatever ran before)
    cudnn_benchmark: bool = True  # cuDNN autotuning: the surface repeats one shape thousands of times
    fold_bn: bool = True  # evaluate the BN-folded network (exact in eval mode)
    # grid points per vmapped forward (None: landscape.engine.DEFAULT_POINTS_PER_FORWARD for the device, the best
    # measured by bench/landscape_speed.py); does not change results beyond float rounding
    points_per_forward: int | None = None
    save_every_s: float = 10.0  # seconds between atomic saves of a running surface
    # "orthokd" (this package's engine) or "loss-landscapes" (the same surface through that library, a cross-check:
    # landscape.crosscheck; every point recomputed, fp32, unfolded, 2-D only)
    engine: str = "orthokd"

    @property
    def precision(self) -> str:
        """fp32 (IEEE), tf32 or bf16 (autocast; its remaining fp32 ops IEEE)."""
        return "bf16" if self.bf16 else "tf32" if self.tf32 else "fp32"

    def numerics(self, device: torch.device) -> dict[str, Any]:
        """What the surface metadata records as ``numerics``: precision, cuDNN autotuning, device type."""
        return {"precision": self.precision, "cudnn_benchmark": self.cudnn_benchmark, "device": device.type}

    def __post_init__(self) -> None:
        if self.bf16 and self.tf32:
            raise UserError("choose one precision: bf16 or tf32 (--dtype)")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: use a positive number of images per forward pass")
        if self.points_per_forward is not None and self.points_per_forward < 1:
            raise UserError(f"--points-per-forward {self.points_per_forward}: use a positive number of grid points")


def tensors_sha(dirs: list[dict[str, torch.Tensor]]) -> str:
    """sha256 (first 16 hex digits) over the names (sorted) and bytes of each dict's tensors, in list order."""
    h = hashlib.sha256()
    for d in dirs:
        for name in sorted(d):
            h.update(name.encode())
            h.update(d[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def milestone_checkpoints(run_dir: Path) -> list[Path]:
    paths = sorted(run_dir.glob("ckpt_e*.pt"))
    if len(paths) < 2:
        raise UserError(f"--trajectory {run_dir} needs at least two ckpt_eXXX.pt milestone checkpoints (found "
                        f"{len(paths)})")
    return paths


def _float_state_like(model: nn.Module, other: Path, flag: str) -> dict[str, torch.Tensor]:
    """The float state of checkpoint ``other``, refused unless it has ``model``'s architecture."""
    a, b = float_state(model), float_state(load_model(other)[0])
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise UserError(f"{flag} {other} has another architecture than the checkpoint")
    return b


def fitted_range(coords: np.ndarray) -> tuple[float, float]:
    """[lo - m, hi + m] with lo = min(coords, 0), hi = max(coords, 0), m = TRAJECTORY_MARGIN * (hi - lo):
    a grid axis that contains the whole path and the centre with a margin."""
    lo, hi = min(float(coords.min()), 0.0), max(float(coords.max()), 0.0)
    m = TRAJECTORY_MARGIN * (hi - lo) if hi > lo else 1.0
    return lo - m, hi + m


def _directions_from_file(model: nn.Module, path: Path, count: int) -> tuple[str, list[Direction]]:
    if is_li_direction_file(path):
        return "li_directions", read_li_directions(path, model, count)
    src = load_surface(path, role="--directions file")
    if len(src.directions) < count:
        raise UserError(f"--directions {path} holds {len(src.directions)} direction(s), {count} needed")
    check_directions_fit(model, src.directions[:count], f"--directions {path}")
    return src.meta.get("kind", "random"), src.directions[:count]


def check_directions_fit(model: nn.Module, dirs: list[Direction], source: str) -> None:
    """Refuse directions with a tensor the model's state does not have, or has with another shape."""
    state = model.state_dict()
    for d in dirs:
        bad = [k for k, v in d.items() if k not in state or state[k].shape != v.shape]
        if bad:
            raise UserError(f"{source} does not fit this model ({bad[0]}); it was made for another model")


def build_directions(model: nn.Module, spec: GridSpec, directions_file: Path | None, trajectory: Path | None,
                     interpolate: Path | None) -> tuple[str, list[Direction], dict]:
    """(kind, directions, extra metadata); the surface is always centred on the checkpoint itself."""
    count = 1 if spec.is_1d else 2
    if interpolate is not None:
        other = _float_state_like(model, interpolate, "--interpolate")
        return "interpolate", [difference(float_state(model), other)], {
            "interpolate_to": str(interpolate), "interpolate_sha256": sha256_file(interpolate)}
    if trajectory is not None:
        origin = float_state(model)
        names = [n for n, p in model.named_parameters() if p.dim() > 1 or spec.include_biasbn]
        paths = milestone_checkpoints(trajectory)
        states = [_float_state_like(model, p, "--trajectory") for p in paths]
        dirs, coords, ratios = pca_directions(origin, states, names)
        # Every parameter gets an entry (zeros where the path is not projected), as in Li's direction files.
        dirs = [{n: d.get(n, torch.zeros_like(origin[n])) for n, _ in model.named_parameters()} for d in dirs]
        return "trajectory", dirs[:count], {"trajectory_run": str(trajectory),
                                            "trajectory_checkpoints": [p.name for p in paths],
                                            "trajectory_coords": coords[:, :count].tolist(),
                                            "trajectory_explained_variance_ratio": ratios[:count]}
    if directions_file is not None:
        kind, dirs = _directions_from_file(model, directions_file, count)
        return kind, dirs, {"directions_from": str(directions_file)}
    return "random", random_directions(model, count, spec.dir_seed, spec.include_biasbn), {}


def fit_grid_to_path(spec: GridSpec, coords: list[list[float]]) -> GridSpec:
    """``spec`` with each axis range replaced by ``fitted_range`` of the path's coordinates on it."""
    c = np.asarray(coords, dtype=float)
    xmin, xmax = fitted_range(c[:, 0])
    if spec.is_1d:
        return dataclasses.replace(spec, xmin=xmin, xmax=xmax)
    ymin, ymax = fitted_range(c[:, 1])
    return dataclasses.replace(spec, xmin=xmin, xmax=xmax, ymin=ymin, ymax=ymax)


def _gather(local: list, dist: DistInfo) -> list:
    """The concatenation of every rank's ``local`` list, in rank order."""
    if not dist.enabled:
        return local
    parts: list = [None] * dist.world_size
    tdist.all_gather_object(parts, local)
    return [r for p in parts for r in p]


def compute_surface(
    ckpt_path: Path,
    spec: GridSpec,
    store: Path,
    device: torch.device,
    opts: EngineOptions = EngineOptions(),
    *,
    directions_file: Path | None = None,
    trajectory: Path | None = None,
    interpolate: Path | None = None,
    fit_trajectory: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    dist: DistInfo = DistInfo(),
) -> Surface:
    """Compute every missing point of the surface of ``ckpt_path`` and return it (``evaluate_surface`` on the
    checkpoint's model and its split, normalized as it was trained). ``fit_trajectory``: with ``trajectory``,
    replace the grid's ranges by ones that contain the projected path (``fit_grid_to_path``)."""
    quiet = quiet or not dist.is_main
    model, ckpt = load_model(ckpt_path)
    data = checkpoint_split(ckpt["config"], spec.split, spec.max_images, spec.dataset, spec.data_dir)
    kind, dirs, extra = build_directions(model, spec, directions_file, trajectory, interpolate)
    if fit_trajectory and kind == "trajectory":
        spec = fit_grid_to_path(spec, extra["trajectory_coords"])
        log(f"grid fitted to the training path (its extent plus {TRAJECTORY_MARGIN:.0%} each side): x "
            f"[{spec.xmin:.4g}, {spec.xmax:.4g}]" + ("" if spec.is_1d else f", y [{spec.ymin:.4g}, {spec.ymax:.4g}]")
            + "; pass --xrange/--yrange to choose it", quiet)
    meta = surface_meta(
        kind, spec, dirs, f"{data.description} [{spec.split}] ({len(data)} images)", device,
        {
            "checkpoint": str(ckpt_path),
            "checkpoint_sha256": sha256_file(ckpt_path),
            "arch": ckpt["arch"],
            "method": ckpt["method"].get("name"),
            "epoch": ckpt["epoch"],
            "bn": "eval mode, checkpoint statistics",
            **extra,
        },
    )
    return evaluate_surface(model, data.normalized(), data.labels, spec, dirs, meta, device, opts, store=store,
                            overwrite=overwrite, quiet=quiet, dist=dist, what=f"surface of {ckpt_path.name}")


def surface_meta(kind: str, spec: GridSpec, dirs: list[Direction], data: str, device: torch.device,
                 source: dict[str, Any]) -> dict[str, Any]:
    """A surface's metadata: what it is centred on (``source``: checkpoint or model), the grid, the directions
    (sha, norms, cos(x, y)), the images (``data`` ends "(N images)") and provenance."""
    return {"kind": kind, "grid": spec.to_json() | {"dataset": None, "data_dir": None},
            "directions_sha": tensors_sha(dirs),
            "direction_norms": [float(torch.sqrt(sum((t.double() ** 2).sum() for t in d.values()))) for d in dirs],
            "cos_xy": cosine(dirs[0], dirs[1]) if len(dirs) > 1 else None, "split": spec.split, "data": data,
            "provenance": provenance(device), **source}


def evaluate_surface(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: GridSpec,
    dirs: list[Direction],
    meta: dict[str, Any],
    device: torch.device,
    opts: EngineOptions = EngineOptions(),
    *,
    store: Path | None = None,
    overwrite: bool = False,
    quiet: bool = False,
    dist: DistInfo = DistInfo(),
    what: str = "surface",
    loss: Loss = F.cross_entropy,
) -> Surface:
    """Every point theta* + sum_i c_i d_i of ``spec``'s grid around ``model`` (landscape.engine.SurfaceEngine), and,
    for a trajectory surface, the loss along ``meta["trajectory_coords"]``. With ``store``, rank 0 holds an
    exclusive lock on it, resumes the points it holds (its identity and precision must match ``meta`` and
    ``opts``) and saves it every ``opts.save_every_s`` seconds and at the end. Precision and cuDNN autotuning are
    set for the computation (``backend_settings``; restored after it) and recorded as ``meta["numerics"]``."""
    quiet = quiet or not dist.is_main
    meta["numerics"] = opts.numerics(device)
    lock = (
        exclusive_lock(store, f"surface store {store}")
        if store is not None and dist.is_main
        else contextlib.nullcontext()
    )
    with lock:
        shape = spec.shape
        surface = Surface(spec.xcoords(), spec.ycoords(), np.full(shape, np.nan), np.full(shape, np.nan), meta, dirs,
                          np.zeros(shape, dtype=bool))
        if opts.engine == "loss-landscapes":
            return _cross_check(surface, model, images, labels, spec, dirs, device, opts, store, overwrite, dist, loss)
        if store is not None and store.exists() and not overwrite:
            old = load_surface(store)
            check_resumable(old, meta, store)
            was = old.meta.get("numerics", {}).get("precision", opts.precision)  # older stores did not record it
            if was != opts.precision:
                raise UserError(f"{store} was computed in {was}, this run asks for {opts.precision}; pass --dtype "
                                f"{was} to resume it, or --overwrite to start again in {opts.precision}")
            surface.loss, surface.acc, surface.computed = old.loss, old.acc, old.computed
            if "trajectory_loss" in old.meta:
                meta["trajectory_loss"] = old.meta["trajectory_loss"]
        todo = np.flatnonzero(~surface.computed.reshape(-1))
        trajectory = meta["kind"] == "trajectory"
        if todo.size == 0 and (not trajectory or "trajectory_loss" in meta):
            log(f"{store}: all {surface.loss.size} points already computed", quiet)
            return surface
        engine = SurfaceEngine(model, dirs, images, labels, device, opts.batch_size, opts.bf16, opts.fold_bn,
                               opts.points_per_forward, loss)
        if opts.fold_bn and not engine.folded:
            log(f"{what}: BatchNorm not folded (torch.fx cannot trace the model, or it calls a folded module twice); "
                "the same results, slower", quiet)
        with backend_settings(opts.tf32, opts.cudnn_benchmark):
            if todo.size:
                _compute_points(surface, todo, engine, store, opts, dist, quiet, what, len(labels))
            if trajectory:
                meta["trajectory_loss"] = [loss for loss, _ in engine.points(meta["trajectory_coords"])]
        if store is not None and dist.is_main:
            save_surface(surface, store)
        return surface


def _cross_check(surface: Surface, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, spec: GridSpec,
                 dirs: list[Direction], device: torch.device, opts: EngineOptions, store: Path | None, overwrite: bool,
                 dist: DistInfo, loss: Loss) -> Surface:
    """``surface`` with every point from landscape.crosscheck (loss-landscapes); the store, if any, is written
    only when it does not exist yet or ``overwrite`` (a cross-check never resumes nor mixes with our engine)."""
    from importlib.metadata import version

    from landscape.crosscheck import loss_landscapes_grid

    if dist.world_size > 1 or surface.meta["kind"] == "trajectory":
        raise UserError("--engine loss-landscapes runs in one process on random or given directions; drop "
                        "torchrun/--trajectory or use the default engine")
    if store is not None and store.exists() and not overwrite:
        raise UserError(f"{store} exists; the loss-landscapes cross-check recomputes every point: pass --overwrite "
                        "or choose another --out")
    surface.loss, surface.acc = loss_landscapes_grid(model, images, labels, spec, dirs, device,
                                                     opts.batch_size or (128 if device.type == "cpu" else 2048), loss)
    surface.computed[:] = True
    surface.meta["engine"] = f"loss-landscapes {version('loss-landscapes')} (planar_interpolation, zig-zag undone)"
    if store is not None:
        save_surface(surface, store)
    return surface


def _compute_points(surface: Surface, todo: np.ndarray, engine: SurfaceEngine, store: Path | None, opts: EngineOptions,
                    dist: DistInfo, quiet: bool, what: str, images: int) -> None:
    """Evaluate the flat indices ``todo`` of ``surface`` (shared among the ranks), marking each computed."""
    ny = surface.ycoords.size
    coords = [(surface.xcoords[i],) if surface.is_1d else (surface.xcoords[i // ny], surface.ycoords[i % ny])
              for i in range(surface.loss.size)]
    flat_loss, flat_acc, flat_done = surface.loss.reshape(-1), surface.acc.reshape(-1), surface.computed.reshape(-1)

    def round_of(flat: np.ndarray) -> None:
        """Evaluate ``flat`` shared among the ranks (one collective) and record every rank's points."""
        mine = flat[dist.rank :: dist.world_size]
        local = [(int(i), *r) for i, r in zip(mine, engine.points([coords[i] for i in mine]))]
        for i, loss, acc in _gather(local, dist):
            flat_loss[i], flat_acc[i], flat_done[i] = loss, acc, True

    # A first round of one forward per rank times a point. Every rank must cut the same rounds afterwards (each
    # round is one collective), so all use the slowest rank's time; a rank's share of a round is whole forwards.
    p, first = engine.points_per_forward, min(engine.points_per_forward * dist.world_size, todo.size)
    t0 = time.perf_counter()
    round_of(todo[:first])
    per_point = max(_gather([(time.perf_counter() - t0) * dist.world_size / first], dist))
    log(f"{what}: {todo.size} of {surface.loss.size} points to compute, {images} images each, "
        f"{dist.world_size} process(es), {p} point(s) per forward; "
        f"about {per_point * todo.size / dist.world_size:.0f} s", quiet)
    todo = todo[first:]
    from tqdm.auto import tqdm

    bar = tqdm(total=todo.size + first, initial=first, desc="surface", unit="pt", file=sys.stderr, disable=quiet)
    chunk = dist.world_size * p * max(1, round(5.0 / max(per_point * p, 1e-3)))
    last_save = time.perf_counter()
    for start in range(0, todo.size, chunk):
        round_of(todo[start : start + chunk])
        bar.update(min(chunk, todo.size - start))
        if store is not None and dist.is_main and time.perf_counter() - last_save > opts.save_every_s:
            save_surface(surface, store)
            last_save = time.perf_counter()
    bar.close()
