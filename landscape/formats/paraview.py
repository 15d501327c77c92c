"""The ParaView Python script written beside every VTK surface (OUT.pvpython.py), and a headless check of it.

The script runs under pvpython or pvbatch (``pvbatch OUT.pvpython.py [PNG]``; on a machine without a display,
``xvfb-run -a pvbatch ...``) or from ParaView's Python shell. It opens the VTK file next to it, hides points
whose loss is not finite (valid = 0), colours by log_loss = ln(loss + 0.1) with a labelled colour bar, draws
labelled axes, sets an oblique view of the bowl like the paper's figures, saves a PNG (OUT.png, e.g.
surf.vts.png, or the path given as first argument) and prints one line "orthokd-paraview {json}" with what
it found: the data file, point arrays, field data, bounds and the PNG path.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from training.store.files import atomic_write_text

MARK = "orthokd-paraview "

_TEMPLATE = '''"""Render {name} in ParaView: pvbatch {script} [PNG]   (headless: xvfb-run -a pvbatch ...).
Also runs from ParaView's Python shell. Colour = ln(loss + 0.1); height = {zlabel}."""
import json
import math
import os
import sys

from paraview.simple import (ColorBy, GetActiveViewOrCreate, GetColorTransferFunction, GetScalarBar,
                             OpenDataFile, SaveScreenshot, Show, Text, Threshold, Transform)

NAME = {name!r}
TITLE = {title!r}
AXES = {axes!r}
HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd()
DATA = os.path.join(HERE, NAME) if os.path.isfile(os.path.join(HERE, NAME)) else {abspath!r}
PNG = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else DATA + ".png"
BLACK = [0.0, 0.0, 0.0]

src = OpenDataFile(DATA)
src.UpdatePipeline()
info = src.GetDataInformation()
point_arrays = sorted(info.DataInformation.GetPointDataInformation().GetArrayInformation(i).GetName()
                      for i in range(info.DataInformation.GetPointDataInformation().GetNumberOfArrays()))
field_arrays = sorted(info.DataInformation.GetFieldDataInformation().GetArrayInformation(i).GetName()
                      for i in range(info.DataInformation.GetFieldDataInformation().GetNumberOfArrays()))
bounds = list(info.GetBounds())
shown = src
valid = src.PointData["valid"].GetRange() if "valid" in point_arrays else (1, 1)
if valid[0] < 1:  # some losses are not finite: show only cells whose points are all valid
    shown = Threshold(Input=src, Scalars=["POINTS", "valid"], LowerThreshold=1, UpperThreshold=1)
    shown.AllScalars = 1
# The file's heights are h x z_scale (a bowl, not a needle, on File > Open). Undo the factor in the data and
# apply it again in the display, with the axes grid told about it, so the z axis reads h itself (the loss).
ZS = src.FieldData["z_scale"].GetRange()[0] if "z_scale" in field_arrays else 1.0
shown = Transform(Input=shown)
shown.Transform.Scale = [1.0, 1.0, 1.0 / ZS]
shown.UpdatePipeline()

view = GetActiveViewOrCreate("RenderView")
view.ViewSize = [1200, 900]
view.UseColorPaletteForBackground = 0
view.Background = [1.0, 1.0, 1.0]
view.OrientationAxesVisibility = 0
disp = Show(shown, view)
disp.Scale = [1.0, 1.0, ZS]
ColorBy(disp, ("POINTS", "log_loss"))
lut = GetColorTransferFunction("log_loss")
lut.ApplyPreset("Viridis (matplotlib)", True)
disp.RescaleTransferFunctionToDataRange(True, False)
disp.SetScalarBarVisibility(view, True)
bar = GetScalarBar(lut, view)
bar.Title = "ln(loss + 0.1)"
bar.ComponentTitle = ""
bar.TitleColor = BLACK
bar.LabelColor = BLACK
bar.TitleFontSize = 18
bar.LabelFontSize = 16
bar.HorizontalTitle = 1
bar.RangeLabelFormat = "%.2f"
bar.WindowLocation = "Any Location"
bar.Position = [0.87, 0.12]
bar.ScalarBarLength = 0.6

grid = view.AxesGrid
grid.Visibility = 1
grid.XTitle, grid.YTitle, grid.ZTitle = AXES
for axis in "XYZ":
    setattr(grid, axis + "TitleColor", BLACK)
    setattr(grid, axis + "LabelColor", BLACK)
    setattr(grid, axis + "TitleFontSize", 14)
    setattr(grid, axis + "LabelFontSize", 12)
grid.GridColor = [0.5, 0.5, 0.5]
grid.DataScale = [1.0, 1.0, ZS]
curve = bounds[3] <= bounds[2]  # a 1-D curve: no y extent
# A surface: label the two faces nearest the camera, not all six; a curve has only the x-z faces to label.
grid.AxesToLabel = 63 if curve else 1 + 2
disp.LineWidth = 3

title = Text(Text=TITLE)
tdisp = Show(title, view)
tdisp.WindowLocation = "Upper Center"
tdisp.FontSize = 16
tdisp.Color = BLACK

# Oblique view of the bowl, as the paper's figures: from the (-x, -y) side, about 30 degrees above the plane;
# a curve (no y extent) is seen from the front.
x0, x1, y0, y1, z0, z1 = bounds  # the file's (scaled) bounds: the picture as displayed
centre = [(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2]
span = max(x1 - x0, y1 - y0, z1 - z0, 1e-9)
direction = [0.0, -1.0, 0.15] if curve else [-0.55, -1.0, 0.75]
view.CameraFocalPoint = centre
view.CameraPosition = [c + 2.5 * span * d for c, d in zip(centre, direction)]
view.CameraViewUp = [0.0, 0.0, 1.0]
view.ResetCamera(False)
# Move the picture left by 7% of its width so that the colour bar on the right does not cover it.
pos, foc = list(view.CameraPosition), list(view.CameraFocalPoint)
look = [f - p for f, p in zip(foc, pos)]
right = [look[1], -look[0], 0.0]  # look x up (0, 0, 1)
dist = math.sqrt(sum(v * v for v in look))
norm = math.sqrt(right[0] ** 2 + right[1] ** 2) or 1.0
shift = 0.07 * 2 * dist * math.tan(math.radians(view.CameraViewAngle / 2)) * 1200 / 900
view.CameraPosition = [p + shift * r / norm for p, r in zip(pos, right)]
view.CameraFocalPoint = [f + shift * r / norm for f, r in zip(foc, right)]
view.CameraParallelProjection = 0
SaveScreenshot(PNG, view, ImageResolution=[1200, 900])
print("{mark}" + json.dumps({{"data": DATA, "point_arrays": point_arrays, "field_arrays": field_arrays,
                              "bounds": bounds, "png": PNG}}))
'''


def script_path(vtk_path: Path) -> Path:
    """OUT.pvpython.py beside OUT (surf.vts -> surf.vts.pvpython.py, so surf.vtk and surf.vts do not collide)."""
    return vtk_path.with_name(vtk_path.name + ".pvpython.py")


def write_pvpython_script(vtk_path: Path, title: str, axes: tuple[str, str, str], zlabel: str) -> Path:
    """Write the ParaView script for ``vtk_path`` (axes: x, y, z axis titles; zlabel: the height formula)."""
    path = script_path(vtk_path)
    text = _TEMPLATE.format(name=vtk_path.name, script=path.name, title=title, axes=tuple(axes), zlabel=zlabel,
                            abspath=str(vtk_path.resolve()), mark=MARK)
    atomic_write_text(path, text)
    return path


def pvbatch_command() -> list[str] | None:
    """How to run pvbatch here: under xvfb-run when there is one (Debian's pvbatch aborts without an X display),
    plain pvbatch when a display is set; None when pvbatch is missing or neither is available."""
    if shutil.which("pvbatch") is None:
        return None
    if shutil.which("xvfb-run"):
        return ["xvfb-run", "-a", "pvbatch"]
    return ["pvbatch"] if os.environ.get("DISPLAY") else None


def run_script(script: Path, png: Path, timeout: float = 300) -> dict:
    """Run a written script through pvbatch; returns what it printed on its orthokd-paraview line.
    Raises RuntimeError with pvbatch's last output lines when it fails."""
    cmd = pvbatch_command()
    if cmd is None:
        raise RuntimeError("pvbatch, with xvfb-run or a display, is needed (Debian: apt-get install paraview xvfb)")
    r = subprocess.run([*cmd, str(script), str(png)], capture_output=True, text=True, timeout=timeout)
    found = [line[len(MARK):] for line in r.stdout.splitlines() if line.startswith(MARK)]
    if r.returncode != 0 or not found or not png.is_file():
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-8:])
        raise RuntimeError(f"pvbatch {script} failed (exit {r.returncode}):\n{tail}")
    return json.loads(found[-1])


def check_in_paraview(vtk_path: Path, png: Path) -> dict:
    """Run the script beside ``vtk_path`` through pvbatch into ``png``; what ParaView found, plus the PNG's
    distinct colours and z_over_xy = z extent / max(x extent, y extent) of the bounds it opened."""
    found = run_script(script_path(vtk_path), png)
    x0, x1, y0, y1, z0, z1 = found["bounds"]
    found["z_over_xy"] = (z1 - z0) / max(x1 - x0, y1 - y0, 1e-300)
    found["distinct_colours"] = distinct_colours(png)
    return found


def distinct_colours(png: Path) -> int:
    """Number of distinct RGB colours in an image (1 = blank)."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    return int(np.unique(rgb, axis=0).shape[0])
