"""DeepVoltaire's AutoAugment pipeline (grey-padded crop, flip, CIFAR-10 policy, Cutout 16x16,
all on the host) as the Tables 4-5 default with CutMix-PyTorch's normalization, the earlier order as a flag; three
seeds in the full presets of Tables 1-5 (item 7). Item 5 (best-epoch accuracy): tests/training/engine/test_fit.py."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from training.config import TrainConfig
from training.data.autoaugment import AutoAugmented, cutout, stream_seed
from training.data.batches import DeviceSplit, epoch_generators
from training.data.datasets import load_split
from training.engine.loop import training_batches
from training.runtime.distributed import DistInfo

CPU = torch.device("cpu")


TRAIN = load_split("cifar10", "train", None, 48)
HWC = TRAIN.images.permute(0, 2, 3, 1).contiguous().numpy()  # AutoAugmented's layout (PIL images are HWC)


def _uoguelph_cutout(img: np.ndarray, y: int, x: int, length: int = 16) -> np.ndarray:
    """uoguelph-mlrg/Cutout's util/cutout.py for one hole at (y, x), on an HWC array."""
    h, w = img.shape[:2]
    mask = np.ones((h, w), np.float32)
    mask[np.clip(y - length // 2, 0, h):np.clip(y + length // 2, 0, h),
         np.clip(x - length // 2, 0, w):np.clip(x + length // 2, 0, w)] = 0.0
    return (img * mask[..., None]).astype(np.uint8)


def test_cutout_is_one_clipped_square_hole_always_applied():
    """Centre uniform over the image, side 16 clipped at the borders, pixels set to 0 on every channel, on every
    image (torchvision's RandomErasing would skip half the images and keep its box inside)."""
    white = torch.full((3, 32, 32), 255, dtype=torch.uint8)
    sizes = []
    for s in range(200):
        torch.manual_seed(s)
        y, x = int(torch.randint(32, ())), int(torch.randint(32, ()))
        torch.manual_seed(s)
        out = cutout(white)
        want = _uoguelph_cutout(white.permute(1, 2, 0).numpy(), y, x)
        assert torch.equal(out, torch.from_numpy(want).permute(2, 0, 1)), s
        sizes.append(int((out == 0).all(0).sum()))
    assert min(sizes) > 0 and max(sizes) == 256 and min(sizes) < 100  # always a hole; clipped ones near borders
    assert torch.equal(white, torch.full((3, 32, 32), 255, dtype=torch.uint8))  # the input is untouched


def test_reference_pipeline_item_is_crop_flip_policy_cutout():
    """Item (seed 5, epoch 2, i) of the autoaugment-cutout pipeline = torchvision RandomCrop(32, padding=4, fill=128),
    RandomHorizontalFlip, AutoAugment(CIFAR10, fill 128), then Cutout 16, all drawn from stream_seed(5, 2, 3, i)."""
    ds = AutoAugmented(HWC, "autoaugment-cutout")
    pipe = T.Compose([T.RandomCrop(32, padding=4, fill=128), T.RandomHorizontalFlip(),
                      T.AutoAugment(T.AutoAugmentPolicy.CIFAR10, fill=[128] * 3)])
    holes = 0
    for i in range(12):
        torch.manual_seed(stream_seed(5, 2, 3, i))
        img = np.array(pipe(Image.fromarray(HWC[i])))
        y, x = int(torch.randint(32, ())), int(torch.randint(32, ()))
        want = torch.from_numpy(_uoguelph_cutout(img, y, x)).permute(2, 0, 1)
        got = ds[(5, 2, i)]
        assert torch.equal(got, want), i
        holes += int((got == 0).all(0).sum()) >= 64
    assert holes >= 9  # a hole of at least 8x8 in most images
    assert not torch.equal(ds[(5, 2, 0)], AutoAugmented(HWC)[(5, 2, 0)])  # not the old pipeline


def test_reference_pipeline_does_not_crop_again_on_the_device():
    """With autoaugment-cutout the training batch is the host's image, only normalized (the device's pad-crop and
    flip are skipped: DeepVoltaire crops before the policy); labels and order are the plain run's."""
    data = DeviceSplit.from_imageset(TRAIN, CPU, "autoaugment-cutout", 0)
    cfg = TrainConfig(
        model="resnet8", width=4, batch_size=16, seed=3, channels_last=False, augment="autoaugment-cutout"
    )
    gens = epoch_generators(3, 1, CPU)
    perm = torch.randperm(len(TRAIN), generator=gens.order)
    ds = AutoAugmented(HWC, "autoaugment-cutout")
    for step, (x, t) in enumerate(training_batches(data, cfg, epoch_generators(3, 1, CPU), DistInfo())):
        b = perm[16 * step: 16 * step + 16]
        want = torch.stack([ds[(3, 1, int(i))] for i in b]).float() / 255
        assert torch.allclose(x, (want - data.mean.view(1, 3, 1, 1)) / data.std.view(1, 3, 1, 1))
        assert torch.equal(t.a, TRAIN.labels[b])


def test_cutmix_pytorch_normalization_preset():
    """--normalization cutmix: CutMix-PyTorch's (125.3, 123.0, 113.9)/255 and (63.0, 62.1, 66.7)/255, for CIFAR-100
    too (the reference normalizes both datasets with them)."""
    s = load_split("cifar10", "train", None, 4, normalization="cutmix")
    assert s.mean == pytest.approx((0.491373, 0.482353, 0.446667), abs=1e-6)
    assert s.std == pytest.approx((0.247059, 0.243529, 0.261569), abs=1e-6)
    assert TrainConfig(normalization="cutmix").normalization == "cutmix"


def test_tables_4_5_default_to_the_reference_pipeline_and_three_seeds():
    """The full Tables 4-5 study trains Table 4's augmented runs with autoaugment-cutout and CutMix-PyTorch's
    normalization on 3 seeds; figures.study --table4-augment autoaugment gives the earlier order; Tables 1-3's full
    preset has 3 seeds too; the demo and micro presets keep their seeds (and their time)."""
    from figures.augment.plan import AUGMENT_PRESETS
    from figures.pruning.plan import PRUNE_PRESETS
    from figures.study import augment_spec, build_parser, prune_spec

    full = AUGMENT_PRESETS["full"]
    cfg = full.config(full.settings(4)[0], "label", True, 0, teacher=None)
    assert (cfg.augment, cfg.normalization) == ("autoaugment-cutout", "cutmix")
    assert full.config(full.settings(4)[0], None, False, 0).augment == "none"
    assert full.seeds == (0, 1, 2) and PRUNE_PRESETS["full"].seeds == (0, 1, 2)
    assert AUGMENT_PRESETS["demo"].seeds == (0,) and PRUNE_PRESETS["micro"].seeds == (0,)
    a = build_parser().parse_args(["--tables", "4", "--table4-augment", "autoaugment", "--seeds", "2"])
    spec = augment_spec(a)
    assert spec.config(spec.settings(4)[0], None, True, 0).augment == "autoaugment" and spec.seeds == (0, 1)
    assert prune_spec(build_parser().parse_args(["--tables", "1"])).seeds == (0, 1, 2)
