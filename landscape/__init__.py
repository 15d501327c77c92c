"""orthokd landscape: filter-normalized loss surfaces (Li et al. 2018) of orthokd checkpoints and of any
classifier (docs/reference.md "Loss surfaces"). Public API: ``landscape.surface(model, data, ...) -> Surface``
(landscape.api),
``landscape.sharpness(model, data)`` (landscape.sharpness) and ``landscape.Surface`` (landscape.api: the record of
landscape.record with its writers .save, .render, .contour)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from orthokd import check_packages, export_faces

# Off-screen VTK on headless Linux needs the EGL window chosen before vtk is first imported (docs/reference.md "Loss
# surfaces").
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

check_packages("training")

if TYPE_CHECKING:
    from landscape.api import Surface, surface
    from landscape.sharpness import sharpness

__all__ = ["Surface", "sharpness", "surface"]

# Imported on first use, so importing the package stays light.
export_faces(__name__, {"surface": "landscape.api", "Surface": "landscape.api", "sharpness": "landscape.sharpness"})
