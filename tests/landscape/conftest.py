import pytest
import torch

from training.checkpoint import load_model
from training.data import load_split


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
