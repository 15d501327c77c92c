"""training.engine.console: the banner, the per-epoch line and the step progress of a run."""
from training.config import TrainConfig
from training.engine.console import EpochProgress, banner, epoch_line


class _Bar:
    def __init__(self):
        self.images, self.postfixes = 0, []

    def update(self, n):
        self.images += n

    def set_postfix(self, **kw):
        self.postfixes.append(kw)


def test_epoch_progress_counts_the_steps_of_its_own_epoch():
    bar = _Bar()
    for epoch in (1, 2):
        on_step = EpochProgress(bar, epoch, 0.1, world_size=2, quiet=False)
        for _ in range(30):
            on_step(8, lambda: {"loss": 1.5, "acc": 40.0})
    assert bar.images == 2 * 30 * 8 * 2
    assert bar.postfixes == [{"epoch": e, "lr": "0.1", "loss": "1.500", "acc": "40.000"} for e in (1, 2)]
    quiet = EpochProgress(bar, 3, 0.1, 1, quiet=True)
    for _ in range(25):
        quiet(1, lambda: {})
    assert len(bar.postfixes) == 2


def test_banner_and_epoch_line():
    cfg = TrainConfig(method="scratch", model="resnet8", epochs=3, amp_bf16=True)
    assert banner(cfg, "CIFAR-10", 100, 50, 2, "cpu", runs="2 runs ", extras=", x") == (
        "scratch resnet8 on CIFAR-10: 2 runs 100 train / 50 test images, 3 epochs x 2 steps, device cpu, "
        f"{'TF32' if cfg.tf32 else 'IEEE fp32'} + bf16 autocast, x")
    row = {"epoch": 2, "lr": 0.01, "train_loss": 1.0, "train_acc": 50.0, "test_loss": 2.0, "test_acc": 40.0,
           "images_per_s": 1234.4}
    assert epoch_line(row, 3, who="seed 1 ") == ("seed 1 epoch 2/3 lr 0.01 train loss 1.0000 acc 50.00% | "
                                                 "test loss 2.0000 acc 40.00% | 1234 img/s")
