"""python -m training.prune_schedule: the paper's five pruning x KD schedules as one resumable command each, with
every phase's teacher recorded, and the surplus metric. Tiny ResNet-8 (width 4), real embedded CIFAR-10 images,
one epoch per phase."""
import json

import pytest

from figures.pruning.surplus import schedule_surplus, surplus
from training.cli.common import run_cli
from training.config import TrainConfig
from training.engine.schedules import SCHEDULES, ScheduleSpec, phase_configs
from training.errors import UserError
from training.models.registry import build_model
from training.prune_schedule import main as schedule_main
from training.store.checkpoint import load_checkpoint, save_checkpoint
from training.store.files import sha256_file

TINY = ["--model", "resnet8", "--width", "4", "--max-train-images", "128", "--epochs", "1", "--lr-milestones",
        "--finetune-epochs", "1", "--eval-batch-size", "500", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """An external teacher checkpoint (a seeded ResNet-8; KD only needs its logits and features)."""
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    model = build_model("resnet8", 10, width=4, shortcut="pad")
    save_checkpoint({"arch": {"name": "resnet8", "num_classes": 10, "width": 4, "shortcut": "pad"},
                     "model": model.state_dict(), "method": {"name": "scratch"}, "epoch": 1,
                     "config": TrainConfig(model="resnet8", width=4).to_json()}, path)
    return str(path)


def _run(args):
    try:
        return run_cli(schedule_main, [str(a) for a in args])
    except SystemExit as e:  # argparse refusals
        return e.code


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_each_schedule_distils_in_the_phases_the_paper_names(tmp_path, name):
    spec = ScheduleSpec(name, "feature", "l1", (0.5,), teacher="T.pt", base=TrainConfig(model="resnet8", width=4))
    initial, finetune = phase_configs(spec, tmp_path)
    want = {"finetuned": (None, None), "pre-distill": ("T.pt", None), "post-distill": (None, "T.pt"),
            "pre-post": ("T.pt", "T.pt"), "self-distill": ("T.pt", str(tmp_path / "initial" / "last.pt"))}[name]
    assert (initial.teacher, finetune.teacher) == want
    assert initial.method == ("feature_kd" if want[0] else "scratch")
    assert finetune.method == ("feature_kd" if want[1] else "scratch")
    assert finetune.init == str(tmp_path / "pruned.pt")
    assert (finetune.epochs, finetune.lr, finetune.lr_milestones, finetune.momentum, finetune.weight_decay) == \
        (40, 0.001, (), 0.9, 1e-4)
    assert initial.slim_s == finetune.slim_s == 0.0


def test_slimming_schedules_train_with_sparsity_first(tmp_path):
    base = TrainConfig(model="resnet8", width=4)
    assert phase_configs(ScheduleSpec("finetuned", "label", "slimming", (0.5,), base=base), tmp_path)[0].slim_s == 1e-5
    vgg = TrainConfig(model="vgg19")
    assert phase_configs(ScheduleSpec("finetuned", "label", "slimming", (0.5,), base=vgg), tmp_path)[0].slim_s == 1e-4


def test_self_distill_records_every_teacher_resumes_and_gives_the_surplus(tmp_path, teacher, capsys):
    sd, ft = tmp_path / "sd", tmp_path / "ft"
    assert _run(["--schedule", "self-distill", "--rule", "slimming", "--remaining", "0.6", "--teacher", teacher,
                 "--out-dir", sd, *TINY]) == 0
    assert _run(["--schedule", "finetuned", "--rule", "slimming", "--remaining", "0.6", "--out-dir", ft, *TINY]) == 0
    out = capsys.readouterr().out
    assert out.count("fine-tuned") == 2
    initial, pruned, tuned = (load_checkpoint(p) for p in (sd / "initial/last.pt", sd / "pruned.pt",
                                                              sd / "finetune/last.pt"))
    assert initial["method"]["name"] == "label_kd" and initial["method"]["teacher_sha256"] == sha256_file(teacher)
    assert initial["config"]["slim_s"] == 1e-5
    assert pruned["method"] == initial["method"]  # the pruned network keeps the record of who taught it
    assert pruned["pruning"]["source_sha256"] == sha256_file(sd / "initial/last.pt")
    assert tuned["method"]["teacher"] == str(sd / "initial/last.pt")
    assert tuned["method"]["teacher_sha256"] == sha256_file(sd / "initial/last.pt")
    assert tuned["method"]["init_sha256"] == sha256_file(sd / "pruned.pt") and tuned["arch"] == pruned["arch"]
    assert tuned["pruning"]["rule"] == "slimming"
    ft_tuned = load_checkpoint(ft / "finetune/last.pt")
    assert ft_tuned["method"]["name"] == "scratch" and ft_tuned["method"]["teacher"] is None

    stamp = (sd / "finetune/last.pt").stat().st_mtime_ns
    assert _run(["--schedule", "self-distill", "--rule", "slimming", "--remaining", "0.6", "--teacher", teacher,
                 "--out-dir", sd, *TINY]) == 0  # resumes: every phase is complete
    assert (sd / "finetune/last.pt").stat().st_mtime_ns == stamp

    s_sd, s_ft = (json.loads((d / "schedule.json").read_text()) for d in (sd, ft))
    expected = (s_sd["finetune"]["test_acc"] - s_ft["finetune"]["test_acc"]) - \
               (s_sd["initial"]["test_acc"] - s_ft["initial"]["test_acc"])
    assert schedule_surplus(ft, sd) == pytest.approx(expected)
    with pytest.raises(UserError, match="not finetuned"):
        schedule_surplus(sd, ft)


@pytest.mark.parametrize("name", ["pre-distill", "post-distill", "pre-post", "self-distill"])
def test_a_schedule_without_its_teacher_is_one_error_line(tmp_path, capsys, name):
    assert _run(["--schedule", name, "--rule", "l1", "--remaining", "0.5", "--out-dir", tmp_path / "x", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "--teacher" in err
    assert not (tmp_path / "x").exists()


def test_a_missing_teacher_file_is_one_error_line(tmp_path, capsys):
    assert _run(["--schedule", "post-distill", "--rule", "l1", "--remaining", "0.5", "--teacher", tmp_path / "no.pt",
                 "--out-dir", tmp_path / "x", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --teacher:") and err.count("\n") == 1 and not (tmp_path / "x").exists()


def test_surplus_is_the_papers_difference_of_gains():
    # A hand-worked example, not the paper's row (its printed accuracies could not be found offline): KD gains
    # 71.0 - 69.5 = 1.5 points on the pruned network and 73.0 - 72.25 = 0.75 on the unpruned one: surplus 0.75.
    assert surplus(71.0, 69.5, 73.0, 72.25) == pytest.approx(0.75)
    assert surplus(69.0, 69.5, 73.0, 72.0) == pytest.approx(-1.5)
    assert surplus(70.0, 70.0, 72.0, 72.0) == 0.0
    with pytest.raises(UserError):
        surplus(float("nan"), 1.0, 1.0, 1.0)


def test_pre_post_feature_kd_with_weight_pruning_keeps_the_pruned_weights_zero(tmp_path, teacher):
    import torch
    from torch import nn

    from training.store.checkpoint import load_model

    out = tmp_path / "pp"
    assert _run(["--schedule", "pre-post", "--kd", "feature", "--rule", "weight", "--remaining", "0.5",
                 "--teacher", teacher, "--out-dir", out, *TINY]) == 0
    record = json.loads((out / "finetune/config.json").read_text())
    assert record["keep_zeros"] is True and record["method"] == "feature_kd" and record["teacher"] == teacher
    init, _ = load_model(out / "pruned.pt")
    tuned, ckpt = load_model(out / "finetune/last.pt")
    assert ckpt["method"]["teacher_sha256"] == sha256_file(teacher) and "regressor" in ckpt["aux"]
    for name, m in tuned.named_modules():
        if isinstance(m, nn.Conv2d):
            assert torch.count_nonzero(m.weight[init.get_submodule(name).weight == 0]) == 0, name
