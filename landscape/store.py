"""The surface file (DESIGN §6.4): an ``.npz`` holding coordinates, loss and accuracy grids (NaN = not yet
computed), the directions, and JSON metadata (grid, checkpoint sha256, direction seed and norms, data).
Written atomically; a re-run resumes the NaN points. Li et al.'s HDF5 layout can be written and read."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landscape.directions import Direction
from training.checkpoint import atomic_write
from training.errors import UserError

# Metadata keys that must match for a stored surface to be resumed or extended.
IDENTITY_KEYS = ("kind", "grid", "checkpoint_sha256", "directions_sha", "data")


@dataclass
class Surface:
    xcoords: np.ndarray
    ycoords: np.ndarray  # empty for a 1-D curve
    loss: np.ndarray  # (nx,) or (nx, ny), indexing "ij"; NaN = not computed
    acc: np.ndarray  # accuracy in %, same shape
    meta: dict[str, Any]
    directions: list[Direction] = field(default_factory=list)

    @property
    def is_1d(self) -> bool:
        return self.ycoords.size == 0

    @property
    def done(self) -> bool:
        return not np.isnan(self.loss).any()

    def centre_index(self) -> tuple[int, ...]:
        ix = int(np.argmin(np.abs(self.xcoords)))
        return (ix,) if self.is_1d else (ix, int(np.argmin(np.abs(self.ycoords))))


def store_path(out: Path) -> Path:
    """The resumable store behind an output: ``out`` itself for .npz, else ``out`` with suffix .npz."""
    return out if out.suffix == ".npz" else out.with_suffix(".npz")


def save_surface(s: Surface, path: Path) -> None:
    arrays = {"xcoordinates": s.xcoords, "ycoordinates": s.ycoords, "loss": s.loss, "acc": s.acc,
              "meta_json": np.array(json.dumps(s.meta, sort_keys=True))}
    for i, d in enumerate(s.directions):
        for name, t in d.items():
            arrays[f"dir{i}/{name}"] = t.detach().cpu().numpy()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_surface(path: Path) -> Surface:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            dirs: dict[int, Direction] = {}
            for key in z.files:
                if key.startswith("dir"):
                    i, name = key[3:].split("/", 1)
                    dirs.setdefault(int(i), {})[name] = torch.from_numpy(z[key].copy())
            return Surface(z["xcoordinates"], z["ycoordinates"], z["loss"], z["acc"], meta,
                           [dirs[i] for i in sorted(dirs)])
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"cannot read surface file {path} ({type(e).__name__}); delete it or pass --overwrite") from None


def check_resumable(old: Surface, meta: dict[str, Any], path: Path) -> None:
    diff = [k for k in IDENTITY_KEYS if old.meta.get(k) != meta.get(k)]
    if diff:
        raise UserError(f"{path} holds a different surface (differs in: {', '.join(diff)}); "
                        "pass --overwrite to replace it or choose another --out")


def write_li_h5(s: Surface, path: Path) -> None:
    """Li et al.'s layout: xcoordinates, ycoordinates, {split}_loss, {split}_acc (loss grid indexed [x, y])."""
    import h5py

    split = s.meta.get("split", "train")

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f["xcoordinates"] = s.xcoords
            if not s.is_1d:
                f["ycoordinates"] = s.ycoords
            f[f"{split}_loss"] = s.loss
            f[f"{split}_acc"] = s.acc
            f.attrs["orthokd_meta"] = json.dumps(s.meta, sort_keys=True)

    atomic_write(path, write)


def read_li_h5(path: Path, split: str = "train") -> Surface:
    """Read a surface written by Li et al.'s code (or ``write_li_h5``)."""
    import h5py

    with h5py.File(path, "r") as f:
        y = f["ycoordinates"][:] if "ycoordinates" in f else np.zeros(0)
        meta = json.loads(f.attrs["orthokd_meta"]) if "orthokd_meta" in f.attrs else {"split": split}
        return Surface(f["xcoordinates"][:], y, f[f"{split}_loss"][:], f[f"{split}_acc"][:], meta)
