"""The teacher/student augmentation matrix (Tables 4-5): a teacher trained with or without the augmentation x a
student trained with or without it, for label and feature KD and both augmentations (CutMix, AutoAugment). In every
combination the teacher's input is exactly the student's batch (plain for "teacher yes / student no"), and the run
records its own augmentation and the teacher's. A teacher of another dataset is refused in one line."""
import itertools

import pytest
import torch

from training.cli.common import run_cli
from training.config import RuntimeOptions, TrainConfig
from training.data.batches import DeviceSplit, epoch_generators
from training.data.datasets import load_split
from training.engine.fit import fit
from training.engine.loop import train_one_epoch, training_batches
from training.engine.run import Run, load_teacher
from training.runtime.distributed import DistInfo
from training.store.checkpoint import load_checkpoint, save_checkpoint
from training.train import main

CPU = torch.device("cpu")
TINY = dict(model="resnet8", width=4, max_train_images=64, batch_size=32, channels_last=False)
# augmentation -> the (method, augment) of a teacher / student trained without it and with it
WITHOUT_WITH = {
    "autoaugment": (("scratch", "none"), ("scratch", "autoaugment")),
    "cutmix": (("scratch", "none"), ("cutmix", "none")),
}


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """(method, augment) -> last.pt of a 1-epoch teacher trained that way."""
    root = tmp_path_factory.mktemp("teachers")
    out = {}
    for method, augment in {("scratch", "none"), ("scratch", "autoaugment"), ("cutmix", "none")}:
        cfg = TrainConfig(method=method, augment=augment, epochs=1, lr_milestones=(), **TINY)
        out[(method, augment)] = fit(
            cfg, root / f"{method}-{augment}", RuntimeOptions(device="cpu", quiet=True, workers=0)
        )
    return out


@pytest.fixture(scope="module")
def train_set():
    return load_split("cifar10", "train", None, TINY["max_train_images"])


def _student(kd: str, augmentation: str, yes: bool) -> tuple[str, str]:
    """(method, augment) of a ``kd`` student (label_kd / feature_kd) trained with the augmentation or not."""
    if augmentation == "cutmix":
        return (f"cutmix_{kd}" if yes else kd), "none"
    return kd, ("autoaugment" if yes else "none")


@pytest.mark.parametrize("augmentation,teacher_yes,student_yes,kd",
                         list(itertools.product(["autoaugment", "cutmix"], [False, True], [False, True],
                                                ["label_kd", "feature_kd"])))
def test_teacher_sees_the_students_batch(teachers, train_set, augmentation, teacher_yes, student_yes, kd):
    path = teachers[WITHOUT_WITH[augmentation][teacher_yes]]
    method, augment = _student(kd, augmentation, student_yes)
    cfg = TrainConfig(method=method, augment=augment, teacher=str(path), cutmix_prob=1.0, seed=3, **TINY)
    teacher, sha = load_teacher(str(path), 10, cfg.dataset)
    run = Run(cfg, 10, teacher, sha, CPU, DistInfo())
    seen: dict[str, list[torch.Tensor]] = {"teacher": [], "student": []}
    for who, net in (("teacher", run.objective.teacher), ("student", run.student)):
        net.conv1.register_forward_pre_hook(lambda m, args, who=who: seen[who].append(args[0].clone()))
    data = DeviceSplit.from_imageset(train_set, CPU, augment, 0)
    want = [x for x, _ in training_batches(data, cfg, epoch_generators(3, 1, CPU), DistInfo())]
    train_one_epoch(run.train_module, run.optimizer, data, cfg, 1, DistInfo(), CPU)
    assert len(seen["teacher"]) == len(seen["student"]) == len(want) == 2
    plain_cfg = TrainConfig(method="scratch", seed=3, **TINY)
    plain = [x for x, _ in training_batches(DeviceSplit.from_imageset(train_set, CPU), plain_cfg,
                                            epoch_generators(3, 1, CPU), DistInfo())]
    for t_in, s_in, x, p in zip(seen["teacher"], seen["student"], want, plain):
        assert torch.equal(t_in, s_in) and torch.equal(s_in, x)
        assert torch.equal(x, p) != student_yes  # the plain batch exactly when the student trains without it
    t_method, t_augment = WITHOUT_WITH[augmentation][teacher_yes]
    assert run.method["teacher_augmentation"] == {"method": t_method, "augment": t_augment,
                                                  "cutmix": t_method == "cutmix"}
    assert run.method["augmentation"] == {"augment": augment, "cutmix": method.startswith("cutmix")}


def test_records_in_the_students_checkpoint(teachers, tmp_path):
    """A plain label-KD student of an AutoAugment teacher: config.json holds its own augment, last.pt both."""
    out = tmp_path / "s"
    assert (
        main(
            [
                "--model", "resnet8", "--width", "4", "--max-train-images", "64", "--batch-size", "32", "--epochs",
                "1", "--method", "label_kd", "--teacher", str(teachers[("scratch", "autoaugment")]), "--device",
                "cpu", "--quiet", "--out-dir", str(out),
            ]
        )
        == 0
    )
    method = load_checkpoint(out / "last.pt")["method"]
    assert method["augmentation"] == {"augment": "none", "cutmix": False}
    assert method["teacher_augmentation"] == {"method": "scratch", "augment": "autoaugment", "cutmix": False}


def test_teacher_of_another_dataset_is_refused(teachers, tmp_path, capsys):
    ckpt = load_checkpoint(teachers[("scratch", "none")])
    other = tmp_path / "c100-teacher.pt"
    save_checkpoint({**ckpt, "config": {**ckpt["config"], "dataset": "cifar100"}}, other)
    rc = run_cli(
        main,
        [
            "--model", "resnet8", "--width", "4", "--max-train-images", "64", "--epochs", "1", "--method", "label_kd",
            "--teacher", str(other), "--device", "cpu", "--quiet", "--out-dir", str(tmp_path / "r"),
        ],
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert "trained on cifar100" in err and not (tmp_path / "r").exists()
