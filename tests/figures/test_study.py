"""The micro study end to end (every stage on real images), tables from its run directories, and bad input."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

from figures.paper import TABLE6
from figures.study import main as study_main


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "runs"
    assert study_main(["--preset", "micro", "--out-dir", str(out), "--device", "cpu", "--quiet"]) == 0
    return out


def _nonblank(png) -> float:
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    return float(np.asarray(img)[..., :3].std())


def test_study_writes_every_artifact(micro):
    figs = micro / "figures"
    for name in ("table6.md", "table6.csv", "table6.tex", "table6.png", "scores.json",
                 "table7.png", "table8.png", "table7_sharpness.md", "table8_sharpness.csv"):
        assert (figs / name).is_file(), name
    assert len(list((figs / "table7_vtk").glob("*.vts"))) == 9
    assert len(list(figs.glob("table7_*.gif"))) == 3
    assert len(list((micro / "surfaces").glob("*.npz"))) == 15  # 5 methods x 3 LR steps
    for png in ("table6.png", "table7.png", "table8.png"):
        assert _nonblank(figs / png) > 0.05, png


def test_table6_has_our_rows_beside_the_papers(micro):
    import csv

    rows = list(csv.DictReader((micro / "figures" / "table6.csv").open()))
    assert [r["method"] for r in rows] == ["Scratch", "CutMix", "Label", "Feature", "Feat+CutMix"]
    assert all(r["n"] == "2" for r in rows)
    assert float(rows[0]["paper mean"]) == TABLE6["scratch"]["mean"].value
    assert float(rows[0]["paper 99% (z)"]) == pytest.approx(0.532, abs=1e-3)
    assert rows[0]["verdict vs Scratch"] == "reference" and rows[4]["paper verdict"] == "higher"
    assert all(float(r["mean"]) <= -32 for r in rows)  # N = 32 in the micro preset: score <= -N
    assert "\\begin{tabular}" in (micro / "figures" / "table6.tex").read_text()


def test_panels_have_methods_by_steps(micro):
    from figures.surfaces import surface_path
    from landscape.render import panels_png
    from landscape.store import load_surface

    grid = [[load_surface(surface_path(micro, m, 0, e)) for e in (1, 2, 3)] for m in ("scratch", "cutmix")]
    out = micro / "panels_test.png"
    drawn = panels_png(grid, ["Scratch", "CutMix"], ["e1", "e2", "e3"], out, log=True)
    assert drawn == [f"{r} | {c}" for r in ("Scratch", "CutMix") for c in ("e1", "e2", "e3")]
    assert _nonblank(out) > 0.05


def test_rerun_skips_everything(micro, capfd):
    assert study_main(["--preset", "micro", "--out-dir", str(micro), "--device", "cpu"]) == 0
    assert "0 to run" in capfd.readouterr().err


def _make(*args):
    r = subprocess.run([sys.executable, "-m", "figures.make", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def test_bad_runs_dirs(micro, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = _make("--table", "6", "--runs-dir", str(empty), "--out", str(tmp_path / "o"))
    assert rc == 2 and out == "" and "no run directories" in err and len(err.strip().splitlines()) == 1
    partial = tmp_path / "partial"
    shutil.copytree(micro / "scratch-s0", partial / "scratch-s0")
    shutil.copytree(micro / "cutmix-s0", partial / "cutmix-s0")
    rc, _, err = _make("--table", "6", "--runs-dir", str(partial), "--out", str(tmp_path / "o"), "--runs", "2")
    assert rc == 2 and "has 1 run(s)" in err
    (partial / "cutmix-s0" / "ckpt_e002.pt").unlink()
    rc, _, err = _make("--table", "7", "--runs-dir", str(partial), "--out", str(tmp_path / "o"))
    assert rc == 2 and "ckpt_e002.pt" in err and len(err.strip().splitlines()) == 1
    shutil.rmtree(partial / "cutmix-s0")
    rc, _, err = _make("--table", "7", "--runs-dir", str(partial), "--out", str(tmp_path / "o"))
    assert rc == 2 and "no run of method cutmix with seed 0" in err
