import pytest
import torch

from training.data.datasets import load_split
from training.store.checkpoint import load_model


@pytest.fixture(scope="session")
def model_and_data(tiny_checkpoint):
    """The tiny real checkpoint and 256 real training images (normalized) with labels."""
    model, ckpt = load_model(tiny_checkpoint)
    data = load_split("cifar10", "train", None, 256)
    return model, data.normalized(), data.labels


def naive_loss(model, directions, coords, x, y):
    """Independent evaluation: copy the model, add sum c_i d_i to its parameters, evaluate in eval mode."""
    import copy

    m = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            for c, d in zip(coords, directions):
                p.add_(c * d[name])
        logits = m(x)
    return torch.nn.functional.cross_entropy(logits, y).item(), 100.0 * (logits.argmax(1) == y).float().mean().item()


def _read_vtk(path):
    """A VTK file read back with plain vtk readers: (dataset, points, point arrays, meta_json as a dict)."""
    import json

    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    reader = {".vtk": vtk.vtkStructuredGridReader, ".vts": vtk.vtkXMLStructuredGridReader,
              ".vtp": vtk.vtkXMLPolyDataReader}[path.suffix]()
    reader.SetFileName(str(path))
    reader.Update()
    out = reader.GetOutput()
    pd = out.GetPointData()
    arrays = {pd.GetArrayName(i): vtk_to_numpy(pd.GetArray(i)) for i in range(pd.GetNumberOfArrays())}
    meta = json.loads(out.GetFieldData().GetAbstractArray("meta_json").GetValue(0))
    return out, vtk_to_numpy(out.GetPoints().GetData()), arrays, meta


@pytest.fixture(scope="session")
def read_vtk():
    """The function _read_vtk, for tests that read VTK files back."""
    return _read_vtk
