"""Compute (or resume) a surface of a checkpoint: directions, data, sharding over torchrun ranks,
periodic atomic saves (DESIGN §6)."""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as tdist

from landscape.config import GridSpec
from landscape.directions import (Direction, cosine, difference, float_state, pca_directions, random_directions)
from landscape.engine import SurfaceEngine
from landscape.store import Surface, check_resumable, load_surface, save_surface
from training.checkpoint import load_checkpoint, load_model, provenance, sha256_file
from training.cli import log
from training.data import load_split
from training.distributed import DistInfo
from training.errors import UserError


@dataclass(frozen=True)
class EngineOptions:
    batch_size: int | None = None  # images per forward (None: 128 on CPU, 2048 on GPU); does not change results
    bf16: bool = False  # bf16 autocast (fp32 difference reported by the bench)
    fold_bn: bool = True  # evaluate the BN-folded network (exact in eval mode)
    save_every_s: float = 10.0  # seconds between atomic saves of a running surface


def _sha_of_directions(dirs: list[Direction]) -> str:
    h = hashlib.sha256()
    for d in dirs:
        for name in sorted(d):
            h.update(name.encode())
            h.update(d[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def milestone_checkpoints(run_dir: Path) -> list[Path]:
    paths = sorted(run_dir.glob("ckpt_e*.pt"))
    if len(paths) < 2:
        raise UserError(f"--trajectory {run_dir} needs at least two ckpt_eXXX.pt milestone checkpoints (found {len(paths)})")
    return paths


def build_directions(model, spec: GridSpec, directions_file: Path | None, trajectory: Path | None,
                     interpolate: Path | None) -> tuple[str, list[Direction], dict]:
    """(kind, directions, extra metadata); the surface is always centred on the checkpoint itself."""
    count = 1 if spec.is_1d else 2
    if interpolate is not None:
        other, _ = load_model(interpolate)
        a, b = float_state(model), float_state(other)
        if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
            raise UserError(f"--interpolate {interpolate} has another architecture than the checkpoint")
        return "interpolate", [difference(a, b)], {"interpolate_to": str(interpolate),
                                                         "interpolate_sha256": sha256_file(interpolate)}
    if trajectory is not None:
        origin = float_state(model)
        names = [n for n, p in model.named_parameters() if p.dim() > 1 or spec.include_biasbn]
        paths = milestone_checkpoints(trajectory)
        states = [float_state(load_model(p)[0]) for p in paths]
        dirs, coords = pca_directions(origin, states, names)
        return "trajectory", dirs[:count], {"trajectory_run": str(trajectory),
                                                   "trajectory_checkpoints": [p.name for p in paths],
                                                   "trajectory_coords": coords[:, :count].tolist()}
    if directions_file is not None:
        from landscape.store import load_surface as _load

        src = _load(directions_file)
        if len(src.directions) < count:
            raise UserError(f"--directions {directions_file} holds {len(src.directions)} direction(s), {count} needed")
        params = dict(model.named_parameters())
        for d in src.directions:
            bad = [k for k, v in d.items() if k not in params and k not in model.state_dict() or
                   (k in params and params[k].shape != v.shape)]
            if bad:
                raise UserError(f"--directions {directions_file} does not fit this model ({bad[0]})")
        return src.meta.get("kind", "random"), src.directions[:count], {"directions_from": str(directions_file)}
    return "random", random_directions(model, count, spec.dir_seed, spec.include_biasbn), {}


def _gather(local: list[tuple[int, float, float]], dist: DistInfo) -> list[tuple[int, float, float]]:
    if not dist.enabled:
        return local
    parts: list = [None] * dist.world_size
    tdist.all_gather_object(parts, local)
    return [r for p in parts for r in p]


def compute_surface(ckpt_path: Path, spec: GridSpec, store: Path, device: torch.device, opts: EngineOptions = EngineOptions(),
                    *, directions_file: Path | None = None, trajectory: Path | None = None, interpolate: Path | None = None,
                    overwrite: bool = False, quiet: bool = False, dist: DistInfo = DistInfo()) -> Surface:
    """Compute every missing point of the surface of ``ckpt_path`` and return it (rank 0 writes ``store``)."""
    quiet = quiet or not dist.is_main
    model, ckpt = load_model(ckpt_path)
    cfg = ckpt["config"]
    data = load_split(spec.dataset or cfg.get("dataset", "cifar10"), spec.split,
                      spec.data_dir if spec.data_dir is not None else cfg.get("data_dir"), spec.max_images)
    kind, dirs, extra = build_directions(model, spec, directions_file, trajectory, interpolate)
    meta = {
        "kind": kind, "grid": spec.to_json() | {"dataset": None, "data_dir": None},
        "checkpoint": str(ckpt_path), "checkpoint_sha256": sha256_file(ckpt_path), "arch": ckpt["arch"],
        "method": ckpt["method"].get("name"), "epoch": ckpt["epoch"], "directions_sha": _sha_of_directions(dirs),
        "direction_norms": [float(torch.sqrt(sum((t.double() ** 2).sum() for t in d.values()))) for d in dirs],
        "cos_xy": cosine(dirs[0], dirs[1]) if len(dirs) > 1 else None, "split": spec.split,
        "data": f"{data.description} [{spec.split}] ({len(data)} images)", "bn": "eval mode, checkpoint statistics",
        "provenance": provenance(device), **extra,
    }
    nx, ny = spec.xsteps, spec.ysteps
    shape = spec.shape
    surface = Surface(spec.xcoords(), spec.ycoords(), np.full(shape, np.nan), np.full(shape, np.nan), meta, dirs)
    if store.exists() and not overwrite:
        old = load_surface(store)
        check_resumable(old, meta, store)
        surface.loss, surface.acc = old.loss, old.acc
    todo = np.flatnonzero(np.isnan(surface.loss.reshape(-1)))
    if todo.size == 0:
        log(f"{store}: all {surface.loss.size} points already computed", quiet)
        return surface
    engine = SurfaceEngine(model, dirs, data.normalized(), data.labels, device, opts.batch_size, opts.bf16, opts.fold_bn)
    coords = [(surface.xcoords[i],) if spec.is_1d else (surface.xcoords[i // ny], surface.ycoords[i % ny]) for i in range(surface.loss.size)]
    t0 = time.perf_counter()
    first = engine.point(coords[todo[0]])
    per_point = time.perf_counter() - t0
    log(f"surface of {ckpt_path.name}: {todo.size} of {surface.loss.size} points to compute, {len(data)} images each, "
        f"{dist.world_size} process(es); about {per_point * todo.size / dist.world_size:.0f} s", quiet)
    flat_loss, flat_acc = surface.loss.reshape(-1), surface.acc.reshape(-1)
    flat_loss[todo[0]], flat_acc[todo[0]] = first
    todo = todo[1:]
    from tqdm.auto import tqdm

    bar = tqdm(total=todo.size + 1, initial=1, desc="surface", unit="pt", file=sys.stderr, disable=quiet)
    chunk = max(dist.world_size, dist.world_size * int(max(1, 5.0 / max(per_point, 1e-3))))
    last_save = time.perf_counter()
    for start in range(0, todo.size, chunk):
        mine = todo[start : start + chunk][dist.rank :: dist.world_size]
        local = [(int(i), *engine.point(coords[i])) for i in mine]
        for i, loss, acc in _gather(local, dist):
            flat_loss[i], flat_acc[i] = loss, acc
        bar.update(min(chunk, todo.size - start))
        if dist.is_main and time.perf_counter() - last_save > opts.save_every_s:
            save_surface(surface, store)
            last_save = time.perf_counter()
    bar.close()
    if kind == "trajectory":
        surface.meta["trajectory_loss"] = [engine.point(c)[0] for c in surface.meta["trajectory_coords"]]
    if dist.is_main:
        save_surface(surface, store)
    return surface
