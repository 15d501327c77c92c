"""Every bad landscape input: exit code 2, one line on stderr naming the fix, and the earlier result untouched."""
import os
import shutil
import subprocess
import sys

import pytest

from landscape.compute import EngineOptions
from landscape.config import GridSpec
from landscape.plot import main
from training.cli.common import run_cli
from training.errors import UserError
from training.store.lock import exclusive_lock

BASE = ["--steps", "2", "--max-images", "16", "--device", "cpu", "--quiet"]


def _exit_code(argv) -> int:
    """The command's exit code, in this process (argparse errors exit through SystemExit)."""
    try:
        return run_cli(main, argv)
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def finished(tiny_checkpoint, tmp_path_factory):
    """A finished surface store: the earlier result every bad call must leave alone."""
    path = tmp_path_factory.mktemp("bad") / "done.npz"
    assert main([str(tiny_checkpoint), "--out", str(path), *BASE]) == 0
    return path


CASES = [  # (id, extra arguments, text the one error line must contain)
    ("batch-size -1", ["--batch-size", "-1"], "--batch-size: '-1' must be a positive integer"),
    ("batch-size 0", ["--batch-size", "0"], "--batch-size: '0' must be a positive integer"),
    ("xrange reversed", ["--xrange", "1", "-1"], "--xrange 1 -1 is reversed"),
    ("xrange equal", ["--xrange", "0.5", "0.5"], "give MIN < MAX"),
    ("xrange nan", ["--xrange", "nan", "1"], "--xrange: 'nan' is not a finite number"),
    ("xrange inf", ["--xrange", "-1", "inf"], "--xrange: 'inf' is not a finite number"),
    ("yrange reversed", ["--yrange", "0.2", "-0.2"], "--yrange 0.2 -0.2 is reversed"),
    ("yrange equal", ["--yrange", "0", "0"], "give MIN < MAX"),
    ("yrange nan", ["--yrange", "-1", "nan"], "--yrange: 'nan' is not a finite number"),
    ("steps 0", ["--steps", "0"], "--steps: '0' must be a positive integer"),
    ("steps -2", ["--steps", "-2"], "--steps: '-2' must be a positive integer"),
    ("steps three values", ["--steps", "2", "3", "4"], "--steps takes N or NX NY"),
    ("max-images 0", ["--max-images", "0"], "--max-images: '0' must be a positive integer"),
    ("max-images -5", ["--max-images", "-5"], "--max-images: '-5' must be a positive integer"),
    ("dir-seed -1", ["--dir-seed", "-1"], "--dir-seed: '-1' must be an integer >= 0"),
    ("directions missing", ["--directions", "{tmp}/missing.npz"], "missing.npz not found"),
    ("directions missing h5", ["--directions", "{tmp}/missing.h5"], "missing.h5 not found"),
    ("directions not a surface", ["--directions", "{tmp}/junk.npz"], "cannot read --directions file"),
    ("zmax nan", ["--zmax", "nan"], "--zmax"),
    ("zmax inf", ["--zmax", "inf"], "--zmax"),
]


@pytest.mark.parametrize("extra, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exit_2_one_line_result_kept(tiny_checkpoint, finished, tmp_path, capsys, extra, needle):
    out = tmp_path / "done.npz"
    shutil.copy(finished, out)
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    before = out.read_bytes()
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    rc = _exit_code([str(tiny_checkpoint), "--out", str(out), *BASE, *args])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], captured.err
    assert out.read_bytes() == before


def test_corrupt_store_refused_and_kept(tiny_checkpoint, finished, tmp_path, capsys):
    out = tmp_path / "s.npz"
    out.write_bytes(finished.read_bytes()[:200])
    before = out.read_bytes()
    for target in (out, tmp_path / "s.vtk"):  # the store itself, or the store behind a VTK output
        rc = _exit_code([str(tiny_checkpoint), "--out", str(target), *BASE])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "cannot read surface file" in err[0] and "--overwrite" in err[0]
        assert out.read_bytes() == before


@pytest.mark.parametrize("kwargs", [dict(xmin=1.0, xmax=-1.0), dict(ymin=0.0, ymax=0.0), dict(xmin=float("nan")),
                                    dict(ymax=float("inf")), dict(xsteps=0), dict(ysteps=-1), dict(dir_seed=-3),
                                    dict(max_images=0), dict(split="valid")])
def test_library_refuses_bad_grids(kwargs):
    with pytest.raises(UserError):
        GridSpec(**kwargs)


def test_library_allows_one_point_and_curves():
    assert GridSpec(xmin=0.0, xmax=0.0, xsteps=1, ysteps=0).shape == (1,)
    assert GridSpec(ymin=3.0, ymax=-3.0, ysteps=0).is_1d  # y is unused by a 1-D curve


@pytest.mark.parametrize("batch_size", [0, -1])
def test_library_refuses_bad_batch_size(batch_size):
    with pytest.raises(UserError, match="--batch-size"):
        EngineOptions(batch_size=batch_size)


def test_second_process_on_one_store_exits_2_naming_holder(tiny_checkpoint, finished, tmp_path):
    out = tmp_path / "s.npz"
    shutil.copy(finished, out)
    before = out.read_bytes()
    with exclusive_lock(out, f"surface store {out}"):
        r = subprocess.run([sys.executable, "-m", "landscape.plot", str(tiny_checkpoint), "--out", str(out), *BASE],
                           capture_output=True, text=True, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and f"pid {os.getpid()}" in lines[0] and "in use" in lines[0], r.stderr
    assert out.read_bytes() == before
