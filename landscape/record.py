"""The surface file: an ``.npz`` holding coordinates, loss and accuracy grids indexed [ix, iy], a
computed-mask (a point whose loss came out NaN or inf is computed, not missing), the directions, and JSON
metadata (grid, checkpoint sha256, direction seed and norms, data). Written atomically; a re-run computes
only the points the mask marks as missing. Li et al.'s HDF5 files are read and written by landscape.formats.li_h5."""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landscape.directions import Direction
from training.errors import UserError
from training.store.files import atomic_write

# Metadata keys that must match for a stored surface to be resumed or extended ("loss": only surfaces of a
# loss other than cross-entropy have it).
IDENTITY_KEYS = ("kind", "grid", "checkpoint_sha256", "directions_sha", "data", "loss")


@dataclass
class Surface:
    """A computed (or partly computed) surface: the record the store holds. Its writers are methods of
    landscape.api.Surface, the class ``landscape.surface`` returns."""

    xcoords: np.ndarray
    ycoords: np.ndarray  # empty for a 1-D curve
    loss: np.ndarray  # (nx,) or (nx, ny), indexing "ij"; NaN where not computed (or computed as NaN)
    acc: np.ndarray  # accuracy in %, same shape
    meta: dict[str, Any]
    directions: list[Direction] = field(default_factory=list)
    computed: np.ndarray | None = None  # bool, same shape; None = every non-NaN loss is computed

    def __post_init__(self) -> None:
        if self.computed is None:
            self.computed = ~np.isnan(np.asarray(self.loss, dtype=float))

    @property
    def is_1d(self) -> bool:
        return self.ycoords.size == 0

    @property
    def done(self) -> bool:
        return bool(self.computed.all())

    def centre_index(self) -> tuple[int, ...]:
        ix = int(np.argmin(np.abs(self.xcoords)))
        return (ix,) if self.is_1d else (ix, int(np.argmin(np.abs(self.ycoords))))


def images_used(meta: dict[str, Any]) -> int | None:
    """Images behind each surface point: the count in the metadata's data description ("... (50000 images)",
    as compute_surface writes it), or None when the metadata has none."""
    m = re.search(r"\((\d+) images\)", str(meta.get("data", "")))
    return int(m.group(1)) if m else None


def store_path(out: Path) -> Path:
    """The resumable store behind an output: ``out`` itself for .npz, else ``out`` with suffix .npz."""
    return out if out.suffix == ".npz" else out.with_suffix(".npz")


def save_surface(s: Surface, path: Path) -> None:
    arrays = {"xcoordinates": s.xcoords, "ycoordinates": s.ycoords, "loss": s.loss, "acc": s.acc,
              "computed": s.computed, "meta_json": np.array(json.dumps(s.meta, sort_keys=True))}
    for i, d in enumerate(s.directions):
        for name, t in d.items():
            arrays[f"dir{i}/{name}"] = t.detach().cpu().numpy()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_surface(path: Path, role: str = "surface file") -> Surface:
    """Read a store; ``role`` names the file in the error (e.g. "--directions file")."""
    if not Path(path).is_file():
        raise UserError(f"{role} {path} not found; check the path")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta_json"]))
            dirs: dict[int, Direction] = {}
            for key in z.files:
                if key.startswith("dir"):
                    i, name = key[3:].split("/", 1)
                    dirs.setdefault(int(i), {})[name] = torch.from_numpy(z[key].copy())
            computed = z["computed"].astype(bool) if "computed" in z.files else None  # older stores: non-NaN
            return Surface(z["xcoordinates"], z["ycoordinates"], z["loss"], z["acc"], meta,
                           [dirs[i] for i in sorted(dirs)], computed)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        fix = "delete it or pass --overwrite" if role == "surface file" else "point to an intact file"
        raise UserError(
            f"cannot read {role} {path} ({type(e).__name__}: it is damaged or not a surface); {fix}"
        ) from None


def check_resumable(old: Surface, meta: dict[str, Any], path: Path) -> None:
    diff = [k for k in IDENTITY_KEYS if old.meta.get(k) != meta.get(k)]
    if diff:
        raise UserError(f"{path} holds a different surface (differs in: {', '.join(diff)}); "
                        "pass --overwrite to replace it or choose another --out")
