"""Heights (clip then log, z scale, non-finite losses), contour levels and the pictures a reader sees:
labels, colour bars, ticks that do not run together, titles from the metadata, both checkpoints marked."""
import itertools
import math

import numpy as np
import pytest

from landscape.formats.vtk_files import write_vtk
from landscape.heights import Z_EXTENT_RATIO, heights
from landscape.pictures import panels, render
from landscape.plot import main
from landscape.record import Surface, load_surface
from training.cli.common import run_cli


@pytest.fixture(scope="module")
def real(tiny_checkpoint, tmp_path_factory):
    """A 7 x 5 surface of the tiny real checkpoint, written as .vts with both pictures."""
    d = tmp_path_factory.mktemp("pics")
    assert main([str(tiny_checkpoint), "--steps", "7", "5", "--max-images", "64", "--device", "cpu", "--quiet",
                 "--out", str(d / "s.vts"), "--png", str(d / "s3d.png"), "--contour", str(d / "c.png")]) == 0
    return d, load_surface(d / "s.npz")


def _with_bad_points(s: Surface) -> Surface:
    loss = s.loss.copy()
    loss[0, 0], loss[2, 1] = np.nan, np.inf
    return Surface(s.xcoords, s.ycoords, loss, s.acc.copy(), dict(s.meta))


def _rc(argv) -> int:
    """Exit status of the CLI (argparse errors exit through SystemExit)."""
    try:
        return run_cli(main, argv)
    except SystemExit as e:
        return int(e.code)


def _nonblank(png) -> int:
    from landscape.formats.paraview import distinct_colours

    return distinct_colours(png)


def _ticks_overlap(fig, ax) -> bool:
    """Do any two visible tick labels of ``ax`` overlap on the drawn canvas?"""
    fig.canvas.draw()
    for ticks, labels, (lo, hi) in ((ax.get_xticks(), ax.get_xticklabels(), sorted(ax.get_xlim())),
                                    (ax.get_yticks(), ax.get_yticklabels(), sorted(ax.get_ylim()))):
        boxes = [lab.get_window_extent() for t, lab in zip(ticks, labels) if lo <= t <= hi and lab.get_text()]
        if any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2)):
            return True
    return False


def test_log_zmax_clips_the_loss_then_takes_the_log():
    loss = np.array([0.5, 3.0, 100.0, np.nan, np.inf])
    s = Surface(np.arange(5.0), np.zeros(0), loss, np.zeros(5), {})
    expected = [math.log(0.6), math.log(3.1), math.log(5.1), math.nan, math.log(5.1)]  # ln(min(loss, 5) + 0.1)
    np.testing.assert_allclose(heights(s, zmax=5.0, log=True), expected, rtol=1e-12)
    np.testing.assert_allclose(heights(s, zmax=5.0), [0.5, 3.0, 5.0, np.nan, 5.0])


def test_vtk_log_zmax_heights_in_the_file(real, tmp_path, read_vtk):
    _, s = real
    zmax = float(np.median(s.loss))
    write_vtk(s, tmp_path / "l.vts", zmax=zmax, log=True, zscale=1.0)
    _, pts, arrays, _ = read_vtk(tmp_path / "l.vts")
    np.testing.assert_allclose(pts[:, 2], np.log(np.minimum(arrays["loss"], zmax) + 0.1), rtol=1e-5)
    np.testing.assert_allclose(arrays["log_loss"], np.log(arrays["loss"] + 0.1), rtol=1e-5)  # unclipped array


def test_default_vtk_is_a_bowl_not_a_needle(real, read_vtk):
    d, s = real
    out, pts, arrays, meta = read_vtk(d / "s.vts")
    extent = pts.max(0) - pts.min(0)
    assert extent[2] == pytest.approx(Z_EXTENT_RATIO * max(extent[0], extent[1]), rel=1e-5)
    k = out.GetFieldData().GetArray("z_scale").GetValue(0)
    assert meta["vtk_heights"]["z_scale"] == pytest.approx(k)
    np.testing.assert_allclose(pts[:, 2], arrays["loss"] * k, rtol=1e-5)  # arrays stay unscaled
    assert arrays["loss"].min() == pytest.approx(np.nanmin(s.loss), rel=1e-6)
    assert (d / "s.vts.pvpython.py").is_file()


def test_zscale_override_and_non_finite_losses(real, tmp_path, read_vtk):
    _, s = real
    bad = _with_bad_points(s)
    write_vtk(bad, tmp_path / "b.vtk", zscale=2.0)
    out, pts, arrays, _ = read_vtk(tmp_path / "b.vtk")
    assert (
        out.GetFieldData().GetArray("z_scale").GetValue(0) == 2.0 and np.isfinite(pts).all() and len(pts) == s.loss.size
    )
    finite = np.isfinite(arrays["loss"])
    assert (~finite).sum() == 2 and (arrays["valid"] == finite).all()
    np.testing.assert_allclose(pts[finite, 2], 2.0 * arrays["loss"][finite], rtol=1e-5)
    assert (pts[~finite, 2] == pts[finite, 2].max()).all()  # non-finite: at the largest finite height


@pytest.mark.parametrize("flag,value", [
    ("--zscale", "0"), ("--zscale", "-1"), ("--zscale", "nan"), ("--zscale", "inf"),
    ("--zmax", "0"), ("--zmax", "-2"), ("--zmax", "nan"),
    ("--vlevel", "0"), ("--vlevel", "-0.5"), ("--vlevel", "nan"), ("--vmin", "nan"), ("--vmax", "inf")])
def test_bad_picture_flags_exit_2(tmp_path, capsys, flag, value):
    rc = _rc(["ckpt.pt", "--out", str(tmp_path / "x.vtk"), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and flag in err[0] and not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("vmin,vmax,vlevel", [(5, 1, 0.5), (1, 1, 0.5), (0, 1, 5)])
def test_reversed_or_empty_levels_exit_2(tiny_checkpoint, tmp_path, capsys, vmin, vmax, vlevel):
    rc = _rc([str(tiny_checkpoint), "--out", str(tmp_path / "x.npz"), "--steps", "3", "--max-images", "16",
                        "--device", "cpu", "--quiet", "--contour", str(tmp_path / "c.png"),
                        "--vmin", str(vmin), "--vmax", str(vmax), "--vlevel", str(vlevel)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--v" in err[0] and not (tmp_path / "c.png").exists()


def test_contour_levels_li_and_log_spaced(real):
    _, s = real
    li = [0.1 + 0.5 * i for i in range(20)]  # Li's plot_2D: arange(0.1, 10, 0.5)
    np.testing.assert_allclose(render.contour_levels(s, vlevel=0.5), li)
    np.testing.assert_allclose(render.contour_levels(s, vmin=0.1, vmax=10, vlevel=0.5), li)
    auto = render.contour_levels(s)
    steps = np.diff(np.log(auto + 0.1))
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)  # evenly spaced in ln(loss + 0.1)
    assert auto[0] == pytest.approx(np.nanmin(s.loss)) and auto[-1] == pytest.approx(np.nanmax(s.loss))


def test_contour_map_is_labelled(real):
    _, s = real
    fig = render.contour_figure(_with_bad_points(s))
    ax, bar = fig.axes
    assert ax.get_xlabel() == "direction 1 (filter-normalized)" and ax.get_ylabel() == "direction 2 (filter-normalized)"
    assert bar.get_ylabel() == "loss" and ax.get_aspect() == 1.0
    assert "scratch, epoch 3" in ax.get_title() and "7x5 grid" in ax.get_title() and "64 train images" in ax.get_title()
    assert "loss not finite (2)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert not _ticks_overlap(fig, ax)
    assert _nonblank(real[0] / "c.png") > 100


def test_trajectory_axes_name_the_principal_components(real):
    _, s = real
    meta = dict(s.meta, kind="trajectory", trajectory_explained_variance_ratio=[0.9123, 0.05])
    ax = render.contour_figure(Surface(s.xcoords, s.ycoords, s.loss, s.acc, meta)).axes[0]
    assert ax.get_xlabel() == "PC1 (91.2% var)" and ax.get_ylabel() == "PC2 (5.0% var)"


def test_a_long_thin_trajectory_map_fills_its_panel(real):
    """A trajectory's PC2 range is often ~1% of PC1's: equal aspect would draw a sliver with crowded ticks."""
    _, s = real
    coords = [[-1.1, 0.06], [-0.1, 0.11], [0.0, 0.0]]
    meta = dict(s.meta, kind="trajectory", trajectory_coords=coords, trajectory_explained_variance_ratio=[0.99, 0.01])
    thin = Surface(np.linspace(-1.35, 0.25, s.loss.shape[0]), np.linspace(-0.02, 0.13, s.loss.shape[1]), s.loss,
                   s.acc, meta)
    fig = render.contour_figure(thin)
    ax = fig.axes[0]
    fig.canvas.draw()
    box = ax.get_window_extent()
    assert box.height > 0.5 * box.width and not _ticks_overlap(fig, ax)
    assert ax.get_legend().get_texts()[0].get_text() == "training path"


def test_3d_renders_have_axes_title_and_a_bar_beside_the_mesh(real, tmp_path, monkeypatch):
    d, s = real
    assert _nonblank(d / "s3d.png") > 100
    fig = render.surface3d_figure(s, log=True)
    ax, bar = fig.axes
    assert ax.get_xlabel().startswith("direction 1") and ax.get_zlabel() == "ln(loss + 0.1)"
    assert bar.get_ylabel() == "ln(loss + 0.1)" and "7x5 grid" in ax.get_title()
    fig.canvas.draw()
    assert not ax.get_position().overlaps(bar.get_position())

    def broken(*args, **kw):
        raise RuntimeError("no EGL")

    monkeypatch.setattr(render, "render_png_pyvista", broken)
    assert render.render_png(s, tmp_path / "fallback.png") == "matplotlib"
    assert _nonblank(tmp_path / "fallback.png") > 100


def test_interpolation_curve_marks_both_checkpoints_and_non_finite_points(tmp_path):
    x = np.linspace(-0.5, 1.5, 9)
    loss = 1 + np.sin(np.pi * x) ** 2
    loss[[1, 8]] = [np.nan, np.inf]
    meta = {"kind": "interpolate", "checkpoint": "runs/scratch-s0/ckpt_e160.pt", "method": "scratch", "epoch": 160,
            "interpolate_to": "runs/cutmix-s0/ckpt_e160.pt", "grid": {"xsteps": 9, "ysteps": 0},
            "data": "CIFAR-10 [train] (50000 images)", "split": "train"}
    fig = render.curve_figure(Surface(x, np.zeros(0), loss, 100 - loss, meta))
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("alpha")
    vlines = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":")
    assert vlines == [0.0, 1.0]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "scratch-s0/ckpt_e160.pt" in texts and "cutmix-s0/ckpt_e160.pt" in texts
    assert "loss not finite (2 points)" in [t.get_text() for t in fig.legends[0].get_texts()]
    marked = [line for line in ax.get_lines() if line.get_label().startswith("loss not finite")][0]
    assert sorted(marked.get_xdata()) == [x[1], x[8]]
    assert "50,000 train images" in ax.get_title() and not _ticks_overlap(fig, ax)
    render.plot_curve(Surface(x, np.zeros(0), loss, 100 - loss, meta), tmp_path / "c.png")
    assert _nonblank(tmp_path / "c.png") > 50


def test_panels_rows_columns_one_bar_readable_ticks(real, tmp_path):
    _, s = real
    rows = ["Scratch", "CutMix", "Label KD", "Feature KD", "CutMix+Feature KD"]
    cols = ["end of LR step 1", "end of LR step 2"]
    fig, drawn = panels.panels_figure([[s, s] for _ in rows], rows, cols, log=True)
    texts = [t.get_text() for t in fig.texts]
    assert all(r in texts for r in rows) and all(c in texts for c in cols)
    bars = [a for a in fig.axes if a.get_ylabel() == "ln(loss + 0.1)" and a.name != "3d" and not a.get_xlabel()]
    assert len(bars) == 1
    contours = [a for a in fig.axes if a.name != "3d" and a.get_xlabel()]
    assert len(contours) == len(rows) * len(cols)
    assert all(a.get_ylabel() == "direction 2 (filter-normalized)" for a in contours)
    assert not any(_ticks_overlap(fig, a) for a in contours)
    assert len(drawn) == 10 and panels.panels_png([[s, s]], rows[:1], cols, tmp_path / "p.png") == drawn[:2]
    assert _nonblank(tmp_path / "p.png") > 100


def test_animation_frames_are_titled_and_labelled(real, tmp_path):
    _, s = real
    fig, frame = panels.animation_frames([s, s], ["Scratch, step 1", "Scratch, step 2"], log=True)
    ax = frame(1)
    assert ax.get_title().startswith("Scratch, step 2\nscratch, epoch 3") and ax.get_zlabel() == "ln(loss + 0.1)"
    assert ax.get_xlabel() == "direction 1 (filter-normalized)"
    panels.animate([s, s], ["a", "b"], tmp_path / "a.gif")
    from PIL import Image

    assert Image.open(tmp_path / "a.gif").n_frames == 2


def test_offscreen_child_chooses_the_vtk_window_without_the_package_face():
    import subprocess
    import sys

    from landscape.pictures import offscreen

    code = ("import os, runpy, sys; os.environ.pop('VTK_DEFAULT_OPENGL_WINDOW', None); "
            f"runpy.run_path({offscreen.__file__!r}, run_name='child'); "
            "print(os.environ['VTK_DEFAULT_OPENGL_WINDOW'], 'landscape' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert r.stdout.split() == ["vtkEGLRenderWindow", "False"]
