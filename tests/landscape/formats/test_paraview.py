"""The VTK files as ParaView opens them: Debian's pvbatch (under xvfb-run when there is no display) runs the
OUT.pvpython.py script written beside each file. Skips, with the reason printed, when pvbatch is missing
(CI has no internet to install it); bench/paraview_check.py runs the same check by hand."""
import numpy as np
import pytest

from landscape.formats.paraview import check_in_paraview, pvbatch_command, script_path
from landscape.formats.vtk_files import write_vtk
from landscape.heights import Z_EXTENT_RATIO
from landscape.plot import main
from landscape.record import Surface, load_surface

ARRAYS = {"loss", "log_loss", "accuracy", "error", "valid"}
FIELDS = {"meta_json", "z_scale"}


@pytest.fixture(scope="module")
def files(request, tmp_path_factory):
    if pvbatch_command() is None:
        reason = ("pvbatch with xvfb-run or a display not found (apt-get install paraview xvfb); "
                  "bench/paraview_check.py runs the same check where they are")
        print(f"\nSKIP test_paraview: {reason}")
        pytest.skip(reason)
    tiny_checkpoint = request.getfixturevalue("tiny_checkpoint")  # trained only when the test can run
    d = tmp_path_factory.mktemp("pv")
    for suffix in (".vtk", ".vts", ".vtp"):
        assert main([str(tiny_checkpoint), "--steps", "7", "5", "--max-images", "64", "--device", "cpu", "--quiet",
                     "--log", "--out", str(d / f"s{suffix}")]) == 0
    return d


@pytest.mark.parametrize("suffix", [".vtk", ".vts", ".vtp"])
def test_every_format_opens_with_arrays_and_a_bowl(files, suffix):
    path = files / f"s{suffix}"
    assert script_path(path).is_file()
    found = check_in_paraview(path, files / f"s{suffix}.check.png")
    assert ARRAYS <= set(found["point_arrays"]) and FIELDS <= set(found["field_arrays"])
    assert found["z_over_xy"] == pytest.approx(Z_EXTENT_RATIO, rel=1e-4)  # not a needle
    assert found["distinct_colours"] > 200  # a coloured surface, bar and labels, not a blank view


def test_non_finite_points_are_hidden_not_breaking_the_render(files, tmp_path):
    s = load_surface(files / "s.npz")
    loss = s.loss.copy()
    loss[3, 2], loss[0, 4] = np.nan, np.inf
    write_vtk(Surface(s.xcoords, s.ycoords, loss, s.acc, s.meta), tmp_path / "bad.vts", log=True)
    found = check_in_paraview(tmp_path / "bad.vts", tmp_path / "bad.png")
    assert np.isfinite(found["bounds"]).all() and found["z_over_xy"] == pytest.approx(Z_EXTENT_RATIO, rel=1e-4)
    assert found["distinct_colours"] > 200
