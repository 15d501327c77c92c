import pytest

from training.data.datasets import load_split


@pytest.fixture(scope="session")
def real_batch_u8():
    """16 real CIFAR-10 training images (uint8, N x 3 x 32 x 32) and their labels."""
    s = load_split("cifar10", "train", None, 16)
    return s.images, s.labels
