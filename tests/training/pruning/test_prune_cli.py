"""python -m training.prune (a trained checkpoint -> a pruned schema-v1 checkpoint) and fine-tuning it through the
normal trainer (--init, --keep-zeros, --slim-s): tiny ResNet-8 (width 4) runs on real embedded CIFAR-10 images."""
import json

import pytest
import torch
from torch import nn

from training.cli.common import run_cli
from training.config import RuntimeOptions, TrainConfig
from training.engine.fit import fit
from training.models.registry import build_model
from training.prune import main as prune_main
from training.pruning.structured import count_params_macs, prunable_bns
from training.store.checkpoint import load_checkpoint, load_model, save_checkpoint
from training.store.files import sha256_file
from training.train import main as train_main

TINY = dict(model="resnet8", width=4, max_train_images=128, batch_size=64, eval_batch_size=500)
QUIET = RuntimeOptions(device="cpu", quiet=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A real (one-epoch) ResNet-8 run: its last.pt."""
    out = tmp_path_factory.mktemp("src") / "run"
    return fit(TrainConfig(epochs=1, lr_milestones=(), **TINY), out, QUIET)


def _cli(main, args):
    """Exit status of ``main`` under run_cli, counting argparse's refusals (SystemExit) too."""
    try:
        return run_cli(main, [str(a) for a in args])
    except SystemExit as e:
        return e.code


def _prune(args, capsys):
    rc = _cli(prune_main, args)
    return rc, capsys.readouterr()


def test_l1_prune_writes_a_checkpoint_whose_arch_rebuilds_the_smaller_network(source, tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    rc, io = _prune([source, "--rule", "l1", "--remaining", "0.5", "0.5", "0.75", "--out", out], capsys)
    assert rc == 0, io.err
    model, ckpt = load_model(out)  # what landscape and diversity call
    assert ckpt["arch"]["block_widths"] == [2, 4, 12]  # int(4*.5), int(8*.5), int(16*.75)
    unpruned, src = load_model(source)
    p = ckpt["pruning"]
    assert p["source_sha256"] == sha256_file(source) and p["rule"] == "l1" and p["remaining"] == [0.5, 0.5, 0.75]
    assert (p["params_before"], p["macs_before"]) == count_params_macs(unpruned)
    assert (p["params_after"], p["macs_after"]) == count_params_macs(model)
    assert p["params_after"] < p["params_before"] and p["macs_after"] < p["macs_before"]
    assert ckpt["method"] == src["method"] and ckpt["config"] == src["config"]
    assert f"{p['params_before']:,} -> {p['params_after']:,}" in io.out and sha256_file(source) in io.out


def test_an_existing_output_is_kept_unless_overwrite(source, tmp_path, capsys):
    out = tmp_path / "pruned.pt"
    out.write_bytes(b"an earlier result")
    rc, io = _prune([source, "--rule", "l1", "--remaining", "0.5", "--out", out], capsys)
    assert rc == 2 and "--overwrite" in io.err and len(io.err.strip().splitlines()) == 1
    assert out.read_bytes() == b"an earlier result"
    rc, io = _prune([source, "--rule", "l1", "--remaining", "0.5", "--out", out, "--overwrite"], capsys)
    assert rc == 0, io.err
    assert load_model(out)[1]["arch"]["block_widths"] == [2, 4, 8]


def test_weight_prune_stores_plain_weights_with_zeros(source, tmp_path, capsys):
    out = tmp_path / "w.pt"
    rc, io = _prune([source, "--rule", "weight", "--remaining", "0.4", "--out", out], capsys)
    assert rc == 0, io.err
    ckpt = load_checkpoint(out)
    assert ckpt["arch"] == load_checkpoint(source)["arch"]
    assert not any(k.endswith(("weight_orig", "weight_mask")) for k in ckpt["model"])
    model, _ = load_model(out)
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    total, zeros = sum(w.numel() for w in convs), sum(int((w == 0).sum()) for w in convs)
    assert zeros == int(total * 0.6)
    assert ckpt["pruning"]["params_after"] == ckpt["pruning"]["params_before"] - zeros


def test_finetuning_a_weight_pruned_init_keeps_pruned_weights_exactly_zero_across_resume(source, tmp_path, capsys):
    pruned = tmp_path / "w.pt"
    assert _prune([source, "--rule", "weight", "--remaining", "0.3", "--out", pruned], capsys)[0] == 0
    init, _ = load_model(pruned)
    zero = {n: m.weight == 0 for n, m in init.named_modules() if isinstance(m, nn.Conv2d)}
    cfg = TrainConfig(epochs=2, lr_milestones=(), lr=0.05, init=str(pruned), **TINY)
    run = tmp_path / "ft"
    fit(cfg, run, RuntimeOptions(device="cpu", quiet=True, stop_after_epoch=1))
    last = fit(cfg, run, QUIET)  # resumes epoch 2 from last.pt (masks rebuilt from --init)
    record = json.loads((run / "config.json").read_text())
    assert record["keep_zeros"] is True and record["init_sha256"] == sha256_file(pruned)
    tuned, ckpt = load_model(last)
    assert ckpt["epoch"] == 2 and ckpt["method"]["init_sha256"] == sha256_file(pruned)
    assert ckpt["pruning"]["rule"] == "weight"
    moved = 0
    for n, m in tuned.named_modules():
        if isinstance(m, nn.Conv2d):
            assert torch.count_nonzero(m.weight[zero[n]]) == 0, n
            moved += int((m.weight != init.get_submodule(n).weight)[~zero[n]].sum())
    assert moved > 0  # the kept weights did train


def test_finetuning_a_structured_pruned_init_trains_the_pruned_arch_with_the_finetune_recipe(source, tmp_path, capsys):
    pruned = tmp_path / "s.pt"
    assert _prune([source, "--rule", "slimming", "--remaining", "0.5", "--out", pruned], capsys)[0] == 0
    out = tmp_path / "ft"
    rc = run_cli(train_main, ["--init", str(pruned), "--recipe", "finetune", "--epochs", "1", "--model", "resnet8",
                              "--width", "4", "--max-train-images", "128", "--out-dir", str(out), "--device", "cpu",
                              "--quiet"])
    assert rc == 0
    record = json.loads((out / "config.json").read_text())
    assert (record["lr"], record["lr_milestones"], record["epochs"], record["keep_zeros"]) == (0.001, [], 1, False)
    _, ckpt = load_model(out / "last.pt")
    assert ckpt["arch"] == load_checkpoint(pruned)["arch"]


@pytest.mark.parametrize("flags, needle", [
    (["--model", "resnet14", "--width", "4"], "--model resnet8"),
    (["--model", "resnet8", "--width", "8"], "--width 4"),
])
def test_init_whose_arch_does_not_match_the_flags_is_one_error_line(source, tmp_path, capsys, flags, needle):
    rc = run_cli(train_main, ["--init", str(source), *flags, "--epochs", "1", "--out-dir", str(tmp_path / "x"),
                              "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error:") and needle in err
    assert not (tmp_path / "x").exists()


def test_slim_s_adds_the_l1_subgradient_to_prunable_gammas(tmp_path):
    """With s > 0 the after-backward hook shrinks the prunable BN gammas: sum |gamma| drops below the s = 0 run's."""
    sums = {}
    for s in (0.0, 0.05):
        last = fit(TrainConfig(epochs=1, lr_milestones=(), slim_s=s, **TINY), tmp_path / f"s{s}", QUIET)
        model, _ = load_model(last)
        sums[s] = sum(float(bn.weight.detach().abs().sum()) for _, bn in prunable_bns(model))
        assert json.loads((tmp_path / f"s{s}" / "config.json").read_text())["slim_s"] == s
    steps, lr, n_gammas = 2, 0.1, 2 + 4 + 8
    assert sums[0.05] < sums[0.0] - 0.5 * 0.05 * lr * steps * n_gammas


def _tiny_vgg_checkpoint(path):
    arch = {"name": "vgg19", "num_classes": 10, "cfg": [4, "M", 4, "M", 4, "M", 4, "M", 4]}
    model = build_model("vgg19", 10, cfg=arch["cfg"])
    save_checkpoint({"arch": arch, "model": model.state_dict(), "method": {"name": "scratch"}, "epoch": 1,
                     "config": TrainConfig(model="vgg19").to_json()}, path)


def _emptying_checkpoint(source, path):
    """The source with blocks.0.bn1's gammas far below every other: a 50% global threshold empties that layer."""
    ckpt = load_checkpoint(source)
    ckpt["model"]["blocks.0.bn1.weight"] = torch.full((4,), 1e-6)
    for k in ("blocks.1.bn1.weight", "blocks.2.bn1.weight"):
        ckpt["model"][k] = ckpt["model"][k].abs() + 0.5
    save_checkpoint({k: v for k, v in ckpt.items() if k not in ("format", "version", "content_sha256")}, path)


@pytest.mark.parametrize("case, args, needle", [
    ("no-rule", ["--rule", "l1", "--remaining", "0.5"], "ResNets only"),
    ("ratio", ["--rule", "l1", "--remaining", "0"], "(0, 1]"),
    ("ratio", ["--rule", "weight", "--remaining", "1.5"], "(0, 1]"),
    ("ratio", ["--rule", "slimming", "--remaining", "nan"], "finite"),
    ("empty", ["--rule", "slimming", "--remaining", "0.5"], "empty layer blocks.0.bn1"),
    ("ratio", ["--rule", "weight", "--remaining", "0.5", "0.5", "0.5"], "one global remaining ratio"),
    ("ratio", ["--rule", "slimming", "--preset", "A"], "--rule l1 only"),
])
def test_bad_pruning_input_is_one_error_line_and_exit_2(source, tmp_path, capsys, case, args, needle):
    ckpt = tmp_path / "in.pt"
    if case == "no-rule":
        _tiny_vgg_checkpoint(ckpt)
    elif case == "empty":
        _emptying_checkpoint(source, ckpt)
    else:
        ckpt = source
    rc, io = _prune([ckpt, *args, "--out", tmp_path / "out.pt"], capsys)
    assert rc == 2 and io.err.startswith("error:") and io.err.count("\n") == 1 and needle in io.err, io.err
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("module", ["training.prune", "training.prune_schedule"])
def test_help_explains_every_flag_without_design_notes(module):
    import importlib

    parser = importlib.import_module(module).build_parser()
    text = parser.format_help()
    assert "DESIGN" not in text and "§" not in text and "`" not in text
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and len(action.help) > 8, action.option_strings
