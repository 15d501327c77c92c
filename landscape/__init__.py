"""orthokd landscape: filter-normalized loss surfaces (Li et al. 2018) of orthokd checkpoints and of any
classifier (docs/reference.md §6). Public API: ``landscape.surface(model, data, ...) -> Surface`` (landscape.api),
``landscape.sharpness(model, data)`` (landscape.sharpness) and ``landscape.Surface`` (landscape.store)."""
import importlib
import os

# Off-screen VTK on headless Linux needs the EGL window chosen before vtk is first imported (docs/reference.md §6.6).
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

# Imported on first use: the off-screen render child imports this package and must not load torch.
_API = {"surface": "landscape.api", "Surface": "landscape.store"}


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name == "sharpness":  # a callable module: landscape.sharpness(model, data) and its functions
        return importlib.import_module("landscape.sharpness")
    raise AttributeError(f"module 'landscape' has no attribute {name!r}")
