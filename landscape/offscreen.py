"""Off-screen pyvista render of a saved mesh, run as a child process by landscape.render: a missing or
broken OpenGL stack can crash VTK outright (segfault), which a child process turns into a clean fallback.

    python -m landscape.offscreen MESH.vts PNG SCALARS TITLE [PATH.vtp]
"""
from __future__ import annotations

import sys

import landscape  # noqa: F401  (sets VTK_DEFAULT_OPENGL_WINDOW before vtk loads)


def main(argv: list[str]) -> int:
    import pyvista as pv

    mesh_path, png, scalars, title, *rest = argv
    mesh = pv.read(mesh_path)
    x0, x1, y0, y1, z0, z1 = mesh.bounds
    k = 0.8 * max(x1 - x0, y1 - y0) / max(z1 - z0, 1e-12)  # heights scaled to the plane's size, for viewing
    p = pv.Plotter(off_screen=True, window_size=(800, 600))
    p.add_mesh(mesh.scale([1.0, 1.0, k]), scalars=scalars, cmap="viridis", smooth_shading=True,
               scalar_bar_args={"title": scalars})
    if rest:
        p.add_mesh(pv.read(rest[0]).scale([1.0, 1.0, k]), color="red", line_width=4)
    if title:
        p.add_title(title, font_size=10)
    p.camera_position = "iso"
    p.screenshot(png)
    p.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
