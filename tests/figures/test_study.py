"""The micro study end to end (every stage on real images), tables from its run directories as the paper prints
them, the setup named in every output, pooling refused across setups, resume after a lost file."""
import csv
import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from figures.paper import TABLE6_ROWS
from figures.study import main as study_main

SETUP = ("resnet8 width 4", "cifar10 (embedded 5,000-image subset)", "256 training images", "3 epochs")


def _nonblank(png) -> float:
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    return float(np.asarray(img)[..., :3].std())


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_study_writes_every_artifact(micro):
    figs = micro / "figures"
    for name in ("table6.md", "table6.csv", "table6.tex", "table6.json", "table6.png", "scores.json",
                 "table7.png", "table8.png", *(f"table{t}_{k}.{e}" for t in (7, 8) for k in ("hessian", "flatness")
                                                for e in ("md", "csv", "tex", "json"))):
        assert (figs / name).is_file(), name
    assert len(list((figs / "table7_vtk").glob("*.vts"))) == 9  # 3 methods x 3 LR steps
    assert len(list((figs / "table8_vtk").glob("*.vts"))) == 15  # 5 methods x 3 LR steps
    assert len(list(figs.glob("table7_*.gif"))) == 3 and len(list(figs.glob("table8_*.gif"))) == 5
    assert len(list((micro / "surfaces").glob("*.npz"))) == 15  # 5 methods x 3 LR steps
    for png in ("table6.png", "table7.png", "table8.png"):
        assert _nonblank(figs / png) > 0.05, png


def test_surface_tables_have_the_papers_rows(micro):
    figs = micro / "figures"
    for table, names in ((7, ["Scratch", "CutMix", "Distill"]),
                         (8, ["Scratch", "CutMix", "Label KD", "Feature KD", "CutMix+Feature KD"])):
        for kind in ("hessian", "flatness"):
            rows = _rows(figs / f"table{table}_{kind}.csv")
            assert [r["method"] for r in rows] == [n for n in names for _ in range(3)], (table, kind)
            assert [int(r["epoch"]) for r in rows] == [1, 2, 3] * len(names)
        hessian = _rows(figs / f"table{table}_hessian.csv")
        assert {r["images"] for r in hessian} == {"16"}  # every Hessian number on the 16 sharpness images
        flat = _rows(figs / f"table{table}_flatness.csv")
        assert {r["surface images"] for r in flat} == {"128"}
        assert "first 16 training images" in (figs / f"table{table}_hessian.md").read_text()
        assert "first 128 training images" in (figs / f"table{table}_flatness.md").read_text()


def test_every_output_names_its_setup(micro):
    figs = micro / "figures"
    for stem in ("table6", "table7_hessian", "table8_flatness"):
        caption = json.loads((figs / f"{stem}.json").read_text())["caption"]
        assert all(part in caption for part in SETUP) and "teacher sha256" in caption, stem
        assert all(part in (figs / f"{stem}.md").read_text() for part in SETUP), stem
        for row in _rows(figs / f"{stem}.csv"):
            assert all(part in row["setup"] for part in SETUP), stem
            taught = row["method"] not in ("Scratch", "CutMix")
            assert ("teachers/scratch-teacher/ckpt_e003.pt" in row["setup"]) == taught, (stem, row["method"])


def test_table6_has_our_rows_beside_the_papers(micro):
    figs = micro / "figures"
    rows = _rows(figs / "table6.csv")
    assert [r["method"] for r in rows] == ["Scratch", "CutMix", "Label", "Feature", "Feat+CutMix"]
    assert all(r["n"] == "2" for r in rows)
    printed = {"Scratch": (-143.96, 0.462, 0.207, 0.532), "Feat+CutMix": (-141.34, 0.186, 0.092, 0.239)}
    for r in rows:
        if r["method"] in printed:
            assert tuple(float(r[f"paper {c}"]) for c in ("mean", "std", "ErrMargin", "99%")) == printed[r["method"]]
    assert rows[0]["verdict vs Scratch"] == "reference" and rows[4]["paper verdict"] == "higher"
    assert [r["paper note"] for r in rows] == ["", "", "", "[1]", "[2] [3]"]
    md = (figs / "table6.md").read_text()
    assert "| -143.96 |" in md and "[1] Feature, ErrMargin: 0.353 / sqrt(5) = 0.1579" in md
    assert "[3] Feat+CutMix, 99%: 2.576 x 0.186 / sqrt(5) = 0.214; the printed 0.239" in md
    assert all(float(r["mean"]) <= -32 for r in rows)  # N = 32 in the micro preset: score <= -N
    assert "\\begin{tabular}" in (figs / "table6.tex").read_text()


def test_table6_csv_recomputed_from_the_per_run_scores(micro):
    """mean, std (ddof 1), ErrMargin = std/sqrt(n), 2.576 ErrMargin and t(0.995, n-1) ErrMargin from scores.json,
    with numpy and scipy here, not diversity.stats."""
    figs = micro / "figures"
    doc = json.loads((figs / "scores.json").read_text())
    per_method: dict[str, list[float]] = {}
    for ck in doc["checkpoints"]:
        assert ck["score"] == pytest.approx(np.mean(ck["batch_scores"]), abs=1e-9)
        per_method.setdefault(TABLE6_ROWS[ck["method"]], []).append(ck["score"])
    rows = {r["method"]: r for r in _rows(figs / "table6.csv")}
    assert set(rows) == set(per_method)
    for name, xs in per_method.items():
        x = np.asarray(xs)
        n, std = len(x), float(np.sqrt(np.sum((x - x.mean()) ** 2) / (len(x) - 1)))
        err = std / math.sqrt(n)
        want = {"n": n, "mean": x.mean(), "std": std, "ErrMargin": err, "99% (z)": 2.576 * err,
                "99% (t)": float(stats.t.ppf(0.995, n - 1)) * err}
        for col, v in want.items():
            assert float(rows[name][col]) == pytest.approx(v, rel=1e-9, abs=1e-12), (name, col)


def test_table6_plot_uses_the_papers_row_names(micro, tmp_path, monkeypatch):
    import figures.analysis.table6 as t6
    from diversity.config import ScoreConfig

    seen = {}
    monkeypatch.setattr(t6, "plot_scores", lambda per_run, summaries, path, title: seen.update(
        keys=list(per_run), methods=[s.method for s in summaries]))
    t6.make_table6(micro, tmp_path, ScoreConfig(batch_size=32, batches=1), 2, __import__("torch").device("cpu"),
                   quiet=True)
    assert seen["keys"] == seen["methods"] == ["Scratch", "CutMix", "Label", "Feature", "Feat+CutMix"]


def test_panels_have_methods_by_steps(micro):
    from figures.analysis.surfaces import surface_path
    from landscape.pictures.panels import panels_png
    from landscape.record import load_surface

    grid = [[load_surface(surface_path(micro, m, 0, e)) for e in (1, 2, 3)] for m in ("scratch", "cutmix")]
    out = micro / "panels_test.png"
    drawn = panels_png(grid, ["Scratch", "CutMix"], ["e1", "e2", "e3"], out, log=True)
    assert drawn == [f"{r} | {c}" for r in ("Scratch", "CutMix") for c in ("e1", "e2", "e3")]
    assert _nonblank(out) > 0.05


def test_rerun_skips_everything(micro, capfd):
    assert study_main(["--preset", "micro", "--out-dir", str(micro), "--device", "cpu"]) == 0
    assert "0 to run" in capfd.readouterr().err


def test_a_table_job_with_a_lost_file_is_redone(micro, capfd):
    """A kill -9 after table7.png but before the GIFs leaves no manifest; a lost file makes the manifest incomplete.
    Either way the re-run redoes that table job (and only it) and every file is back."""
    figs = micro / "figures"
    gif = figs / "table7_scratch.gif"
    gif.unlink()
    assert study_main(["--preset", "micro", "--out-dir", str(micro), "--device", "cpu"]) == 0
    assert "1 to run" in capfd.readouterr().err and gif.is_file()
    (figs / "table8.manifest.json").unlink()
    assert study_main(["--preset", "micro", "--out-dir", str(micro), "--device", "cpu"]) == 0
    assert "1 to run" in capfd.readouterr().err and (figs / "table8.manifest.json").is_file()


def test_manifest_is_written_only_after_every_file(tmp_path):
    from figures.jobs import manifest_path, outputs_complete, with_manifest

    m = manifest_path(tmp_path, "t")
    a, b = tmp_path / "a.png", tmp_path / "sub" / "b.gif"

    def killed():
        a.write_text("x")
        raise KeyboardInterrupt  # killed between two files

    with pytest.raises(KeyboardInterrupt):
        with_manifest(m, killed)
    assert not m.exists() and not outputs_complete(m)

    def build():
        b.parent.mkdir(exist_ok=True)
        a.write_text("x")
        b.write_text("y")
        return [a, b]

    assert with_manifest(m, build) == [a, b, m] and outputs_complete(m)
    b.unlink()
    assert not outputs_complete(m)


def _make(*args):
    r = subprocess.run([sys.executable, "-m", "figures.make", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def _copy_runs(micro, dest):
    for run in micro.glob("*-s*"):
        if (run / "config.json").is_file():
            shutil.copytree(run, dest / run.name)
    return dest


def _set(run_dir, **changes):
    path = run_dir / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


@pytest.mark.parametrize("table, changed, pair, key", [
    ("6", ["cutmix-s0", "cutmix-s1"], ("scratch-s0", "cutmix-s0"), "width"),  # width 8 beside width 4: one table
    ("6", ["cutmix-s0"], ("cutmix-s0", "cutmix-s1"), "width"),  # one row mixing widths
    ("7", ["label_kd-s0"], ("scratch-s0", "label_kd-s0"), "width"),
])
def test_mixed_setups_are_refused(micro, tmp_path, table, changed, pair, key):
    runs = _copy_runs(micro, tmp_path / "runs")
    for name in changed:
        _set(runs / name, width=8)
    out = tmp_path / "out"
    rc, stdout, err = _make("--table", table, "--runs-dir", str(runs), "--out", str(out), "--preset", "micro",
                            "--device", "cpu")
    assert rc == 2 and stdout == "" and len(err.strip().splitlines()) == 1, err
    assert f"differ in {key}" in err and all(p in err for p in pair), err
    assert not out.exists()


def test_bad_runs_dirs(micro, tmp_path):
    common = ("--preset", "micro", "--device", "cpu", "--out", str(tmp_path / "o"))
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, out, err = _make("--table", "6", "--runs-dir", str(empty), *common)
    assert rc == 2 and out == "" and "no run directories" in err and len(err.strip().splitlines()) == 1
    partial = tmp_path / "partial"
    shutil.copytree(micro / "scratch-s0", partial / "scratch-s0")
    shutil.copytree(micro / "cutmix-s0", partial / "cutmix-s0")
    rc, _, err = _make("--table", "6", "--runs-dir", str(partial), *common, "--runs", "2")
    assert rc == 2 and "has 1 run(s)" in err
    (partial / "cutmix-s0" / "ckpt_e002.pt").unlink()
    rc, _, err = _make("--table", "7", "--runs-dir", str(partial), *common)
    assert rc == 2 and "ckpt_e002.pt" in err and len(err.strip().splitlines()) == 1
    shutil.rmtree(partial / "cutmix-s0")
    rc, _, err = _make("--table", "7", "--runs-dir", str(partial), *common)
    assert rc == 2 and "no run of method cutmix with seed 0" in err


def test_full_size_make_refuses_runs_on_the_embedded_subset(micro, tmp_path):
    rc, out, err = _make("--table", "6", "--runs-dir", str(micro), "--out", str(tmp_path / "o"), "--device", "cpu",
                         "--allow-cpu")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "embedded 5,000-image subset" in err and "--preset demo" in err


def test_make_with_the_preset_reproduces_the_studys_tables(micro, tmp_path, capsys):
    """figures.make --preset micro on the study's runs (as the README's --preset demo commands): the same sizes,
    so the stored surfaces are reused unchanged and the tables equal the study's."""
    from figures.make import main as make_main

    surfaces = {p: p.stat().st_mtime_ns for p in (micro / "surfaces").glob("*.npz")}
    out = tmp_path / "out"
    assert make_main(["--table", "6", "7", "--runs-dir", str(micro), "--out", str(out), "--preset", "micro",
                      "--device", "cpu", "--quiet"]) == 0
    assert "| Feat+CutMix |" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (micro / "surfaces").glob("*.npz")} == surfaces
    for name in ("table6.csv", "table7_hessian.csv", "table7_flatness.csv"):
        assert _rows(out / name) == _rows(micro / "figures" / name), name
