"""CIFAR-100 through torchvision's on-disk format (``cifar-100-python/{train,test,meta}`` pickles), built from real
embedded CIFAR-10 images relabelled into 100 classes. torchvision checks the md5 of the real files; the test
replaces only that check (``torchvision.datasets.cifar.check_integrity``) by "the file exists", so the parsing,
layout and labels are torchvision's own code on our files, and a test without the patch shows the check is real."""
import os
import pickle

import numpy as np
import pytest
import torchvision.datasets.cifar as tv_cifar

from training.config import RuntimeOptions, TrainConfig
from training.data.datasets import NORMALIZATION, load_split
from training.engine.fit import fit
from training.errors import UserError
from training.store.checkpoint import load_checkpoint


def _write_cifar100(root, n_train=256, n_test=100):
    """root/cifar-100-python as torchvision reads it: dicts with 'data' (N x 3072 uint8, R then G then B planes,
    row-major), 'fine_labels', 'coarse_labels', 'filenames', 'batch_label'; meta with the 100 fine label names.
    Label = CIFAR-10 label * 10 + (index mod 10), so all 100 classes can occur."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    expected = {}
    for split, n in (("train", n_train), ("test", n_test)):
        s = load_split("cifar10", split, None, n)
        images = s.images.numpy()  # N x 3 x 32 x 32
        labels = (s.labels.numpy() * 10 + np.arange(n) % 10).tolist()
        entry = {"data": images.reshape(n, 3072), "fine_labels": labels, "coarse_labels": [ln // 5 for ln in labels],
                 "filenames": [f"img_{i}.png" for i in range(n)], "batch_label": f"{split} batch"}
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f)
        expected[split] = (images, labels)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"class_{i}" for i in range(100)],
                     "coarse_label_names": [f"super_{i}" for i in range(20)]}, f)
    return expected


@pytest.fixture
def no_md5(monkeypatch):
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


def test_cifar100_on_disk_format_loads_through_load_split(tmp_path, no_md5):
    expected = _write_cifar100(tmp_path)
    for split in ("train", "test"):
        s = load_split("cifar100", split, str(tmp_path))
        images, labels = expected[split]
        assert s.num_classes == 100 and (s.mean, s.std) == NORMALIZATION[100]
        assert np.array_equal(s.images.numpy(), images) and s.labels.tolist() == labels
    assert load_split("cifar100", "train", str(tmp_path), 64).images.shape == (64, 3, 32, 32)


def test_training_on_cifar100_gives_a_100_class_checkpoint(tmp_path, no_md5):
    _write_cifar100(tmp_path / "data")
    cfg = TrainConfig(model="resnet8", width=4, dataset="cifar100", data_dir=str(tmp_path / "data"), epochs=1,
                      lr_milestones=(), max_train_images=64, eval_batch_size=500)
    ckpt = load_checkpoint(fit(cfg, tmp_path / "run", RuntimeOptions(device="cpu", quiet=True)))
    assert ckpt["arch"]["num_classes"] == 100 and ckpt["model"]["fc.weight"].shape == (100, 16)


def test_without_the_patch_torchvision_refuses_files_whose_md5_differs(tmp_path):
    _write_cifar100(tmp_path)
    with pytest.raises(UserError, match="CIFAR100 not found under --data-dir"):
        load_split("cifar100", "train", str(tmp_path))
