"""Run Li et al.'s own tools on a surface we wrote: h52vtp.py (his VTK export) and plot_2D.py (his contour plots),
from a checkout of github.com/tomgoldstein/loss-landscape that you provide (his code is not part of orthokd).

    python bench/li_tools_check.py --li-repo ~/src/loss-landscape [--surface surf.h5]

Without --surface it computes a small non-square surface (5 x 3 on [-1, 0.5] x [-0.2, 0.4]) of a tiny real
checkpoint first. It then checks that every point of Li's .vtp sits at (x_i, y_j) with our loss[i, j] (read from
the .npz store beside the .h5) and that plot_2D's contour plots run. Prints the largest difference; exit 1 if any.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _vtp_points(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3), zvalue (N,)) of the ASCII .vtp that h52vtp.py writes."""
    text = path.read_text()
    z = re.search(r'<DataArray[^>]*Name="zvalue"[^>]*>(.*?)</DataArray>', text, re.S).group(1)
    p = re.search(r"<Points>\s*<DataArray[^>]*>(.*?)</DataArray>", text, re.S).group(1)
    return np.array(p.split(), float).reshape(-1, 3), np.array(z.split(), float)


def _tiny_surface(work: Path) -> Path:
    run = work / "run"
    subprocess.run([sys.executable, "-m", "training.train", "--model", "resnet8", "--width", "4", "--epochs", "2",
                    "--lr-milestones", "1", "--max-train-images", "256", "--out-dir", str(run), "--device", "cpu",
                    "--quiet"], check=True, cwd=REPO)
    out = work / "surf.h5"
    subprocess.run([sys.executable, "-m", "landscape.plot", str(run / "ckpt_e002.pt"), "--out", str(out), "--steps",
                    "5", "3", "--xrange", "-1", "0.5", "--yrange", "-0.2", "0.4", "--max-images", "128", "--device",
                    "cpu", "--quiet"], check=True, cwd=REPO)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--li-repo", required=True, help="a checkout of tomgoldstein/loss-landscape (h52vtp.py, plot_2D.py)")
    p.add_argument("--surface", default=None, help="an .h5 written by landscape.plot, with its .npz store beside it")
    a = p.parse_args()
    li = Path(a.li_repo).expanduser().resolve()
    with tempfile.TemporaryDirectory() as tmp:
        h5 = Path(a.surface).resolve() if a.surface else _tiny_surface(Path(tmp))
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(li)}
        subprocess.run([sys.executable, str(li / "h52vtp.py"), "--surf_file", str(h5)], check=True, env=env,
                       cwd=h5.parent, capture_output=True)
        pts, z = _vtp_points(Path(f"{h5}_train_loss.vtp"))
        store = np.load(h5.with_suffix(".npz"))
        x, y, loss = store["xcoordinates"], store["ycoordinates"], store["loss"]
        worst = 0.0
        for (px, py, pz), zv in zip(pts, z):
            i, j = int(np.argmin(np.abs(x - px))), int(np.argmin(np.abs(y - py)))
            worst = max(worst, abs(px - x[i]), abs(py - y[j]), abs(loss[i, j] - zv), abs(pz - zv))
        subprocess.run([sys.executable, "-c", f"import plot_2D; plot_2D.plot_2d_contour({str(h5)!r}, 'train_loss', "
                        "0.1, 10, 0.5, False)"], check=True, env=env, cwd=h5.parent, capture_output=True)
        print(f"Li's h52vtp.py: {len(pts)} points of a {len(x)} x {len(y)} surface; max |his (x, y, z) - ours| = "
              f"{worst:.3g}")
        print("Li's plot_2D.plot_2d_contour: ran on our file")
        print(f"li_tools_max_difference: {worst:.3g}")
        return 0 if worst < 1e-5 and len(pts) == loss.size else 1


if __name__ == "__main__":
    sys.exit(main())
