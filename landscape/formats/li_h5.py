"""Li et al.'s HDF5 files (loss-landscape's plot_surface.py, net_plotter.py, h5_util.py), read and written
exactly as his code reads and writes them.

Surface file: datasets ``xcoordinates``, ``ycoordinates`` (2-D only), ``{split}_loss``, ``{split}_acc`` and
``dir_file`` (the path of the direction file, a string). His scheduler enumerates points through
``np.meshgrid(xcoordinates, ycoordinates)`` (indexing "xy"), so the value at (x[ix], y[iy]) sits at flat
position iy * nx + ix: a grid indexed [iy, ix], which is how his plot_2D.py (meshgrid + contour) and
h52vtp.py (meshgrid + ravel) read it. We write that grid with shape (ny, nx); his own crunch allocates
shape (nx, ny) and fills it in the same flat order, so the reader goes by flat order and accepts both.
Values <= 0 mark points not computed yet (his initial -1); a NaN is a computed point.

Direction file: groups ``xdirection`` (and ``ydirection`` for a 2-D surface), each holding datasets
'0'..'N-1', one per tensor in ``model.parameters()`` order (his dir_type "weights"; ignored 1-D tensors are
stored as zeros), or one per ``model.state_dict()`` entry (dir_type "states", used for interpolation
between two checkpoints; BN's integer ``num_batches_tracked`` entries are stored as zero scalars).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from landscape.directions import Direction
from landscape.record import Surface
from training.errors import UserError
from training.store.files import atomic_write

NOT_COMPUTED = -1.0  # Li's marker for a point not computed yet


def direction_file_path(surface_path: Path) -> Path:
    """The direction file written beside a surface file: ``surf.h5`` -> ``surf_directions.h5``."""
    return surface_path.with_name(surface_path.stem + "_directions.h5")


def _li_entries(d: Direction) -> list[np.ndarray]:
    """The tensors of ``d`` in Li's list order; for a states direction, BN's num_batches_tracked (which we
    do not move) is put back as a zero integer scalar after each running_var, where state_dict has it."""
    out = []
    for name, t in d.items():
        out.append(t.detach().cpu().numpy())
        if name.endswith(".running_var") and name[: -len("running_var")] + "num_batches_tracked" not in d:
            out.append(np.zeros((), dtype=np.int64))
    return out


def write_li_directions(directions: list[Direction], path: Path, pca_ratios: list[float] | None = None) -> None:
    """Li's direction file (h5_util.write_list layout); ``pca_ratios`` as his explained_variance_ratio_."""
    import h5py

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            for group, d in zip(("xdirection", "ydirection"), directions):
                grp = f.create_group(group)
                for i, a in enumerate(_li_entries(d)):
                    grp.create_dataset(str(i), data=a)
            if pca_ratios is not None:
                f["explained_variance_ratio_"] = np.asarray(pca_ratios)

    atomic_write(path, write, keep_suffix=True)


def write_li_h5(s: Surface, path: Path) -> list[Path]:
    """Write the surface file ``path`` and its direction file (``direction_file_path``); returns both paths."""
    import h5py

    split = s.meta.get("split", "train")
    dir_path = direction_file_path(path)
    write_li_directions(s.directions, dir_path, s.meta.get("trajectory_explained_variance_ratio"))
    computed = np.asarray(s.computed, dtype=bool)
    loss = np.where(computed, s.loss, NOT_COMPUTED)
    acc = np.where(computed, s.acc, NOT_COMPUTED)

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f["dir_file"] = str(dir_path)
            f["xcoordinates"] = s.xcoords
            if not s.is_1d:
                f["ycoordinates"] = s.ycoords
            f[f"{split}_loss"] = loss if s.is_1d else loss.T  # [ix, iy] -> Li's [iy, ix]
            f[f"{split}_acc"] = acc if s.is_1d else acc.T
            f.attrs["orthokd_meta"] = json.dumps(s.meta, sort_keys=True)

    atomic_write(path, write, keep_suffix=True)
    return [path, dir_path]


def read_li_h5(path: Path, split: str = "train") -> Surface:
    """A surface file written by Li's code (or ``write_li_h5``) as a Surface indexed [ix, iy]."""
    import h5py

    if not Path(path).is_file():
        raise UserError(f"Li surface file {path} not found; check the path")
    try:
        with h5py.File(path, "r") as f:
            x = np.asarray(f["xcoordinates"][:], dtype=float)
            y = np.asarray(f["ycoordinates"][:], dtype=float) if "ycoordinates" in f else np.zeros(0)
            flat_loss = np.asarray(f[f"{split}_loss"][:], dtype=float).ravel()
            flat_acc = np.asarray(f[f"{split}_acc"][:], dtype=float).ravel()
            meta = json.loads(f.attrs["orthokd_meta"]) if "orthokd_meta" in f.attrs else {"split": split}
            if "dir_file" in f:
                v = f["dir_file"][()]
                meta["dir_file"] = v.decode() if isinstance(v, bytes) else str(v)
    except (OSError, KeyError) as e:
        raise UserError(
            f"cannot read {path} as a Li surface file ({e}); it needs xcoordinates and {split}_loss"
        ) from None
    n = len(x) * max(len(y), 1)
    if flat_loss.size != n or flat_acc.size != n:
        raise UserError(f"{path}: {split}_loss has {flat_loss.size} values for a {len(x)} x {max(len(y), 1)} grid")
    shape = (len(x),) if y.size == 0 else (len(y), len(x))
    loss, acc = flat_loss.reshape(shape), flat_acc.reshape(shape)
    if y.size:
        loss, acc = loss.T.copy(), acc.T.copy()
    computed = ~(loss <= 0)  # Li's scheduler: values <= 0 are still to be computed
    return Surface(x, y, np.where(computed, loss, np.nan), np.where(computed, acc, np.nan), meta, [], computed)


def is_li_direction_file(path: Path) -> bool:
    return Path(path).suffix in (".h5", ".hdf5")


def read_li_directions(path: Path, model: nn.Module, count: int) -> list[Direction]:
    """The first ``count`` directions of Li's direction file ``path``, as {name: tensor} for ``model``:
    entry i is the i-th of model.parameters() (N = number of parameters) or of model.state_dict() (N =
    number of state entries; integer entries are dropped). Refuses a file made for another model."""
    import h5py

    if not Path(path).is_file():
        raise UserError(f"--directions file {path} not found; check the path")
    groups = ("xdirection", "ydirection")[:count]
    try:
        with h5py.File(path, "r") as f:
            missing = [g for g in groups if g not in f]
            if missing:
                raise UserError(f"--directions {path} has no '{missing[0]}' group; a {count}-D surface needs "
                                f"{' and '.join(groups)} (a Li direction file)")
            lists = [[np.asarray(f[g][str(i)][()]) for i in range(len(f[g]))] for g in groups]
    except OSError as e:
        raise UserError(f"cannot read --directions {path} as HDF5 ({e}); point to a Li direction file or an .npz "
                        "surface") from None
    params = [(n, p.detach()) for n, p in model.named_parameters()]
    states = list(model.state_dict().items())
    out = []
    for group, entries in zip(groups, lists):
        layout = params if len(entries) == len(params) else states if len(entries) == len(states) else None
        if layout is None:
            raise UserError(f"--directions {path}: {group} holds {len(entries)} tensors, but this model has "
                            f"{len(params)} parameters ({len(states)} state entries); it was made for another model")
        d: Direction = {}
        for i, ((name, ref), a) in enumerate(zip(layout, entries)):
            if tuple(a.shape) != tuple(ref.shape):
                raise UserError(f"--directions {path}: {group}/{i} has shape {tuple(a.shape)}, but {name} of this "
                                f"model has {tuple(ref.shape)}; it was made for another model")
            if ref.is_floating_point():
                d[name] = torch.from_numpy(np.array(a)).to(ref.dtype)
        out.append(d)
    return out
