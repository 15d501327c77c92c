"""What a run trains and evaluates on: datasets as uint8 tensors (datasets.py, with the embedded CIFAR-10 subset in
embedded/), batch augmentation on the device (augment.py), host AutoAugment (autoaugment.py), and the seeded streams
over a device-resident split (batches.py). The face keeps ``from training.data import load_split`` working."""
from training.data.datasets import DATASETS, ImageSet, checkpoint_split, load_split

__all__ = ["DATASETS", "ImageSet", "checkpoint_split", "load_split"]
