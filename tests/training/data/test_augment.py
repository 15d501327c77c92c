"""Per-sample pad-crop + flip on the device against torchvision's reference ops; data loading."""
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

from training.data.augment import crop_flip, random_crop_flip
from training.data.datasets import load_split
from training.errors import UserError


def test_crop_flip_equals_torchvision_reference(real_batch_u8):
    x, _ = real_batch_u8
    n = x.shape[0]
    g = torch.Generator().manual_seed(0)
    top, left = torch.randint(0, 9, (n,), generator=g), torch.randint(0, 9, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    out = crop_flip(x, top, left, flip, padding=4)
    for i in range(n):
        ref = TF.crop(TF.pad(x[i], [4], fill=0), int(top[i]), int(left[i]), 32, 32)
        if flip[i]:
            ref = TF.hflip(ref)
        assert torch.equal(out[i], ref)
    assert out.dtype == torch.uint8


def test_random_crop_flip_draws_per_sample(real_batch_u8):
    x, _ = real_batch_u8
    same = x[:1].repeat(64, 1, 1, 1)  # one real image, 64 times
    out = random_crop_flip(same, torch.Generator().manual_seed(1))
    distinct = {out[i].numpy().tobytes() for i in range(64)}
    assert len(distinct) > 30  # 81 offsets x 2 flips: independent draws give many different crops
    again = random_crop_flip(same, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)


def test_embedded_data_is_balanced_real_cifar10():
    tr, te = load_split("cifar10", "train"), load_split("cifar10", "test")
    assert len(tr) == 5000 and len(te) == 1000
    assert torch.bincount(tr.labels).tolist() == [500] * 10
    assert tr.images.dtype == torch.uint8 and tr.images.shape[1:] == (3, 32, 32)
    assert abs(tr.images.float().mean().item() - 120.7) < 3  # CIFAR-10's mean pixel, not noise


def test_npz_dataset_reads_shared_layout(tmp_path):
    z = np.load(load_split.__globals__["EMBEDDED_DIR"] / "cifar10-mini-test.npz")
    np.savez(tmp_path / "mine-train.npz", images=z["images"][:50], labels=z["labels"][:50], classes=z["classes"])
    np.savez(tmp_path / "mine-test.npz", images=z["images"][50:80], labels=z["labels"][50:80], classes=z["classes"])
    s = load_split("npz", "test", str(tmp_path))
    assert len(s) == 30 and s.num_classes == 10
    assert torch.equal(s.images[0], torch.from_numpy(z["images"][50]).permute(2, 0, 1))


def test_cifar100_torchvision_on_disk_format(tmp_path, monkeypatch):
    """A tiny stand-in written in torchvision's CIFAR-100 pickle layout (real images, labels 0..99)."""
    import hashlib
    import pickle

    import torchvision

    z = np.load(load_split.__globals__["EMBEDDED_DIR"] / "cifar10-mini-test.npz")
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    for name, sl in (("train", slice(0, 40)), ("test", slice(40, 60))):
        imgs = z["images"][sl]
        d = {"data": imgs.transpose(0, 3, 1, 2).reshape(len(imgs), -1), "fine_labels": list(range(len(imgs)))}
        (base / name).write_bytes(pickle.dumps(d))
    (base / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"c{i}" for i in range(100)]}))
    cls = torchvision.datasets.CIFAR100
    md5 = {n: hashlib.md5((base / n).read_bytes()).hexdigest() for n in ("train", "test", "meta")}
    monkeypatch.setattr(cls, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(cls, "test_list", [["test", md5["test"]]])
    monkeypatch.setattr(cls, "meta", {"filename": "meta", "key": "fine_label_names", "md5": md5["meta"]})
    s = load_split("cifar100", "train", str(tmp_path))
    assert len(s) == 40 and s.num_classes == 100
    assert s.mean == (0.5071, 0.4865, 0.4409)
    assert torch.equal(s.images[3], torch.from_numpy(z["images"][3]).permute(2, 0, 1))


def test_missing_dataset_names_data_dir(tmp_path):
    with pytest.raises(UserError, match="--data-dir"):
        load_split("cifar10", "train", str(tmp_path))
    with pytest.raises(UserError, match="npz"):
        load_split("npz", "train", str(tmp_path))
    with pytest.raises(UserError, match="cifar10, cifar100, npz"):
        load_split("svhn", "train")
