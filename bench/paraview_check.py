"""Open orthokd VTK surfaces in ParaView by hand (Debian's pvbatch, under xvfb-run when present) and print what
it found: point arrays, field data, bounds, z extent / xy extent and distinct colours of the rendered PNG.

    python bench/paraview_check.py [FILE.vtk|.vts|.vtp ...]

Each file's OUT.pvpython.py (written beside it by landscape.plot) renders it to FILE.check.png. Without files,
a bowl-shaped demo surface with one NaN and one inf loss is written to every format in a temporary directory.
Exit 1 when a check fails, 2 when pvbatch is missing.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from landscape.formats.paraview import check_in_paraview, pvbatch_command
from landscape.formats.vtk_files import write_vtk
from landscape.record import Surface

NEED_ARRAYS = {"loss", "log_loss", "accuracy", "error", "valid"}
NEED_FIELDS = {"meta_json", "z_scale"}


def demo_files(out: Path) -> list[Path]:
    """loss = 0.05 + 50 r^3 on a 21 x 15 grid over [-1, 1]^2 (r^2 = x^2 + 0.6 y^2), one NaN and one inf."""
    x, y = np.linspace(-1, 1, 21), np.linspace(-1, 1, 15)
    X, Y = np.meshgrid(x, y, indexing="ij")
    loss = 0.05 + 50 * (X ** 2 + 0.6 * Y ** 2) ** 1.5
    loss[0, 0], loss[3, 2] = np.nan, np.inf
    meta = {"method": "demo bowl", "epoch": 0, "arch": {"name": "none"}, "grid": {"xsteps": 21, "ysteps": 15},
            "data": "analytic (0 images)", "split": "train", "kind": "random"}
    s = Surface(x, y, loss, 100 * np.exp(-loss / 5), meta)
    paths = [out / f"bowl{suffix}" for suffix in (".vtk", ".vts", ".vtp")]
    for p in paths:
        write_vtk(s, p, log=True)
    return paths


def main(argv: list[str]) -> int:
    cmd = pvbatch_command()
    if cmd is None:
        print("pvbatch with xvfb-run or a display not found: apt-get install -y paraview xvfb")
        return 2
    print("pvbatch command:", " ".join(cmd))
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(a) for a in argv] or demo_files(Path(tmp))
        failed = 0
        for path in paths:
            png = path.with_name(path.name + ".check.png") if argv else Path.cwd() / (path.name + ".check.png")
            try:
                f = check_in_paraview(path, png)
            except RuntimeError as e:
                print(f"{path}: FAILED\n{e}")
                failed += 1
                continue
            problems = [f"missing point arrays {sorted(NEED_ARRAYS - set(f['point_arrays']))}"] \
                if not NEED_ARRAYS <= set(f["point_arrays"]) else []
            problems += [f"missing field data {sorted(NEED_FIELDS - set(f['field_arrays']))}"] \
                if not NEED_FIELDS <= set(f["field_arrays"]) else []
            problems += ["needle: z extent > 2 x the xy extent"] if f["z_over_xy"] > 2 else []
            problems += ["blank render"] if f["distinct_colours"] < 50 else []
            print(f"{path.name}: point arrays {f['point_arrays']}; field data {f['field_arrays']}; bounds "
                  f"{[round(b, 4) for b in f['bounds']]}; z/xy extent {f['z_over_xy']:.3f}; "
                  f"{f['distinct_colours']} colours in {png}; {'; '.join(problems) or 'ok'}")
            failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
