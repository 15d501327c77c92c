"""orthokd landscape: filter-normalized loss surfaces (Li et al. 2018) of orthokd checkpoints (docs/reference.md §6)."""
import os

# Off-screen VTK on headless Linux needs the EGL window chosen before vtk is first imported (docs/reference.md §6.6).
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
