"""Off-screen pyvista render of a saved mesh, run as a child process by landscape.pictures.render: a missing or
broken OpenGL stack can crash VTK outright (segfault), which a child process turns into a clean fallback.

    python -m landscape.pictures.offscreen SPEC.json

SPEC holds mesh (a .vts whose heights are already scaled for viewing), png, scalars (point array to colour by),
scalar_title, title, axes (x, y, z titles), ranges (the unscaled x, y and height ranges the axis labels show)
and optionally path (a .vtp polyline drawn in red).
"""
from __future__ import annotations

import json
import os
import sys

# Off-screen VTK on headless Linux needs the EGL window chosen before vtk is first imported (docs/reference.md "Loss
# surfaces").
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


def main(argv: list[str]) -> int:
    import pyvista as pv

    spec = json.loads(open(argv[0]).read())
    mesh = pv.read(spec["mesh"])
    p = pv.Plotter(off_screen=True, window_size=(1100, 800))
    p.set_background("white")
    bar = {"title": spec["scalar_title"], "vertical": True, "position_x": 0.88, "position_y": 0.15,
           "height": 0.7, "width": 0.05, "color": "black", "title_font_size": 16, "label_font_size": 14,
           "fmt": "%.3g", "n_labels": 6}
    p.add_mesh(mesh, scalars=spec["scalars"], cmap="viridis", smooth_shading=True, nan_opacity=0.0,
               scalar_bar_args=bar)
    p.scalar_bar.SetVerticalTitleSeparation(14)  # pixels between the title and the top label, which it touched
    if spec.get("path"):
        p.add_mesh(pv.read(spec["path"]), color="red", line_width=4)
    x, y, z = spec["axes"]
    p.show_bounds(xtitle=x, ytitle=y, ztitle=z, axes_ranges=spec["ranges"], color="black", font_size=11,
                  n_xlabels=5, n_ylabels=5, n_zlabels=4, fmt="%.2g", location="outer")
    p.add_text(spec["title"], position="upper_edge", font_size=10, color="black")
    p.camera_position = [(-1.0, -1.6, 1.1), (0, 0, 0), (0, 0, 1)]
    p.reset_camera()  # keeps the oblique direction, centres and fits the bounds
    p.camera.zoom(0.85)
    p.screenshot(spec["png"])
    p.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
