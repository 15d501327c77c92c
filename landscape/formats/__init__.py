"""Surface files: VTK (.vtk/.vts/.vtp) through pyvista (vtk_files), Li et al.'s HDF5 surface and direction files
(li_h5), the pvpython script beside each VTK file (paraview), and the writer chosen by suffix (dispatch)."""
