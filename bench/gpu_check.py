"""One-GPU readiness check of the whole study (sized to finish within 20 minutes), driven through the project's CLIs.

Measures, each in its own try block (a failure is reported with its stderr's last line; the rest continue):
- ResNet-56 training seconds per epoch: fp32 (--no-tf32), TF32 (--tf32), bf16 + channels_last (--bf16),
  + torch.compile, and 5 seeds packed in one process (--seeds 0 1 2 3 4) with its
  ratio to 5 x one bf16 run. Each is timed on the last of --timing-epochs epochs of --timing-images images
  (the first epoch warms up cuDNN and compile) and EXTRAPOLATED to a 50,000-image epoch.
- Test accuracy after a short real schedule (--accuracy-epochs on the whole training set, the 160-epoch
  recipe's lr steps scaled down), bf16 vs fp32, same seed.
- A 51x51 surface of the fp32 checkpoint on 50,000 images: timed on a 2x2 and an NxN grid; seconds per point
  = (t_NxN - t_2x2) / (N^2 - 4), 51x51 = t_2x2 + (51^2 - 4) x that (measured, not extrapolated, when N = 51).
- NASWOT seconds per checkpoint (5 batches of 128): t(two checkpoints) - t(one checkpoint).
- Study ETA: 26 trainings x 160 epochs (single and packed x5), 15 surfaces, 25 NASWOT scores.
A flag the CLIs lack (detected from their --help) makes its measurement "skipped (flag not available)".
Writes DIR/gpu_check.json, DIR/gpu_check.md and DIR/logs/*.log. Exit 0 when nothing failed, 1 otherwise.
Run: .venv/bin/python bench/gpu_check.py [--smoke]
"""
from __future__ import annotations

import datetime as _dt
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from gpu_check_lib import FULL_EPOCH, REPO, Cli, Skip, epoch_timing, help_flags, last_epoch, measure, need
from gpu_check_report import eta_section, write_report
from training.checkpoint import provenance
from training.cli import Parser, positive_int, resolve_device, run_cli
from training.errors import UserError
from training.rundir import read_metrics

PACKED_SEEDS = [0, 1, 2, 3, 4]
VARIANTS = {  # name -> (training flags, what it is)
    "fp32": (["--no-tf32"], "fp32, TF32 off"),
    "tf32": (["--tf32"], "TF32 matmuls and convolutions"),
    "bf16": (["--bf16"], "bf16 autocast + channels_last"),
    "bf16_compile": (["--bf16", "--compile"], "bf16 + channels_last + torch.compile"),
}


def build_parser() -> Parser:
    p = Parser(prog="bench/gpu_check.py", description=__doc__.split("\n\n")[0],
               epilog="Example: .venv/bin/python bench/gpu_check.py --dataset npz --data-dir ../shared/data")
    p.add_argument("--smoke", action="store_true",
                   help="every path on tiny settings on CPU (resnet8 width 4, 256 embedded images, 1 epoch, 3x3 "
                        "surface on 64 images, NASWOT 1 batch of 16; torch.compile skipped): about a minute")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                   help="auto = cuda when available; the full check needs cuda, --smoke runs anywhere [auto]")
    p.add_argument("--out", default=None,
                   help="folder for gpu_check.json, gpu_check.md and logs/ [results/gpu_check-GPU_NAME-DATE]")
    p.add_argument("--overwrite", action="store_true", help="replace an existing gpu_check.json in --out")
    p.add_argument("--dataset", default="npz", choices=("npz", "cifar10"),
                   help="npz = a --data-dir of cifar10-train.npz/cifar10-test.npz; cifar10 = torchvision's layout [npz]")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"),
                   help="folder of the full CIFAR-10 (50,000 train / 10,000 test images) [../shared/data]")
    p.add_argument("--timing-images", type=positive_int, default=10_000,
                   help="training images per timed epoch (extrapolated to 50,000) [10000]")
    p.add_argument("--timing-epochs", type=positive_int, default=2,
                   help="epochs per timing run; the last one is timed, earlier ones warm up [2]")
    p.add_argument("--accuracy-epochs", type=positive_int, default=15,
                   help="epochs of the bf16-vs-fp32 accuracy runs (lr steps at 50%% and 75%%, as 80/120 of 160) [15]")
    p.add_argument("--surface-steps", type=positive_int, default=9,
                   help="N of the timed NxN surface, at least 3 (51 = measure the whole 51x51 surface) [9]")
    p.add_argument("--points-per-forward", type=positive_int, default=8,
                   help="passed to landscape.plot when it has that flag [8]")
    p.add_argument("--quiet", action="store_true", help="no per-command lines on stderr")
    return p


def settings(a) -> dict:
    """Sizes of every measurement: the full check, or --smoke's tiny ones."""
    data = [] if a.smoke else ["--dataset", a.dataset, "--data-dir", str(Path(a.data_dir).resolve())]
    model = ["--model", "resnet8", "--width", "4"] if a.smoke else ["--model", "resnet56"]
    return {"data": data, "model": model, "data_dir": None if a.smoke else str(Path(a.data_dir).resolve()),
            "timing_images": 256 if a.smoke else a.timing_images, "timing_epochs": 1 if a.smoke else a.timing_epochs,
            "accuracy_images": 256 if a.smoke else None, "accuracy_epochs": 1 if a.smoke else a.accuracy_epochs,
            "surface_steps": 3 if a.smoke else a.surface_steps, "surface_images": 64 if a.smoke else FULL_EPOCH,
            "naswot": ["--batches", "1", "--batch-size", "16"] if a.smoke else ["--batches", "5", "--batch-size", "128"]}


def scaled_milestones(epochs: int) -> list[int]:
    """The recipe's lr steps after epochs 80 and 120 of 160, scaled to ``epochs``: round(e x epochs / 160), >= 1."""
    return sorted({max(1, round(e * epochs / 160)) for e in (80, 120)})


def training(cli: Cli, s: dict, device: str, name: str, out: Path, flags: list[str], epochs: int,
             images: int | None, milestones: list[int]) -> float:
    """Run ``python -m training.train`` for one measurement; returns its wall-clock seconds."""
    args = [*s["model"], *s["data"], "--epochs", str(epochs), "--lr-milestones", *map(str, milestones),
            "--out-dir", str(out), "--device", device, "--quiet", "--overwrite", *flags]
    if images is not None:
        args += ["--max-train-images", str(images)]
    return cli.run(name, "training.train", args)[0]


def check_flags(flags: list[str], available: set[str]) -> None:
    missing = [f for f in flags if f.startswith("--") and f not in available]
    if missing:
        raise Skip(f"flag not available: {' '.join(missing)}")


def run_checks(a, device: torch.device, work: Path, cli: Cli) -> dict:
    s = settings(a)
    dev = device.type
    train_flags, plot_flags = help_flags("training.train"), help_flags("landscape.plot")
    optional = ("--tf32", "--no-tf32", "--deterministic", "--seeds")
    res: dict = {"flags": {"training.train": {f: f in train_flags for f in optional},
                           "landscape.plot": {"--points-per-forward": "--points-per-forward" in plot_flags}},
                 "train_speed": {}, "packed": {}, "accuracy": {}, "surface": {}, "naswot": {}}
    note = f"last of {s['timing_epochs']} epoch(s) on {s['timing_images']} images, extrapolated to {FULL_EPOCH}"

    def timing(name: str, flags: list[str], what: str, seeds: list[int] | None = None):
        def fn():
            check_flags(flags, train_flags)
            if a.smoke and "--compile" in flags:
                raise Skip("smoke: torch.compile takes tens of seconds (~40 s on 2 CPU cores); "
                           "it is timed in the full check")
            out = work / name
            target = out / "s{seed}" if seeds else out
            wall = training(cli, s, dev, name, target, flags, s["timing_epochs"], s["timing_images"], [])
            t = epoch_timing(out, seeds)
            return {"what": what, "flags": flags, "wall_s": wall, **t, "extrapolated": True,
                    "summary": f"{t['seconds_per_epoch_50k']:.2f} s per 50k-image epoch ({note})"}
        return fn

    for name, (flags, what) in VARIANTS.items():
        measure(res["train_speed"], name, timing(name, flags, what))
    packed = ["--bf16", "--seeds", *map(str, PACKED_SEEDS)]

    def packed_ratio():
        t = timing("packed_x5", packed, "5 seeds in one process, bf16 + channels_last", PACKED_SEEDS)()
        single = need(res["train_speed"], "bf16", "seconds_per_epoch_50k")
        t["ratio_to_5x_single"] = t["seconds_per_epoch_50k"] / (len(PACKED_SEEDS) * single)
        t["summary"] = (f"{t['seconds_per_epoch_50k']:.2f} s per 50k-image epoch of all 5 seeds, "
                        f"{t['ratio_to_5x_single']:.2f} x the time of 5 single bf16 runs ({note})")
        return t

    measure(res["packed"], "packed_x5", packed_ratio)

    epochs = s["accuracy_epochs"]
    ms = scaled_milestones(epochs)
    fp32 = ["--no-tf32"] if "--no-tf32" in train_flags else []

    def accuracy(name: str, flags: list[str]):
        def fn():
            out = work / f"acc_{name}"
            wall = training(cli, s, dev, f"accuracy_{name}", out, flags, epochs, s["accuracy_images"], ms)
            rows = read_metrics(out, epochs)
            row, n = last_epoch(out)
            train_s = sum(r["seconds"] for r in rows)
            caveat = "" if flags else "; --no-tf32 not available: PyTorch defaults (cuDNN may use TF32)"
            return {"flags": flags, "epochs": epochs, "lr_milestones": ms, "train_images": n, "seed": 0,
                    "test_acc": row["test_acc"], "test_loss": row["test_loss"], "wall_s": wall,
                    "overhead_per_epoch_s": (wall - train_s) / epochs,
                    "summary": f"test acc {row['test_acc']:.2f}% after {epochs} epochs on {n} images, "
                               f"lr x0.1 after {ms}{caveat}"}
        return fn

    measure(res["accuracy"], "fp32", accuracy("fp32", fp32))
    measure(res["accuracy"], "bf16", accuracy("bf16", ["--bf16"]))

    def acc_diff():
        d = need(res["accuracy"], "bf16", "test_acc") - need(res["accuracy"], "fp32", "test_acc")
        return {"bf16_minus_fp32_points": d, "summary": f"bf16 - fp32 test accuracy = {d:+.2f} points (same seed)"}

    measure(res["accuracy"], "bf16_minus_fp32", acc_diff)

    ckpts = [work / d / "last.pt" for d in ("acc_fp32", "acc_bf16", *VARIANTS)]
    ckpt = next((c for c in ckpts if c.is_file()), None)
    measure(res["surface"], "surface_51x51", lambda: surface(cli, s, dev, ckpt, work, plot_flags, a.points_per_forward))
    measure(res["naswot"], "per_checkpoint", lambda: naswot(cli, s, dev, ckpt))
    res["eta"] = eta_section(res, len(PACKED_SEEDS))
    return res


def surface(cli: Cli, s: dict, dev: str, ckpt: Path | None, work: Path, plot_flags: set[str], ppf: int) -> dict:
    """Seconds of a 51x51 surface: t_2x2 + (51^2 - 4) x (t_NxN - t_2x2) / (N^2 - 4), or t_51x51 itself."""
    if ckpt is None:
        raise Skip("needs a trained checkpoint (every training run failed)")
    n, full = s["surface_steps"], 51
    extra = ["--points-per-forward", str(ppf)] if "--points-per-forward" in plot_flags else []
    data = ["--data-dir", s["data_dir"]] if s["data_dir"] else []
    times = {}
    for steps in (2, n):
        args = [str(ckpt), "--out", str(work / f"surface_{steps}.npz"), "--steps", str(steps), "--max-images",
                str(s["surface_images"]), "--device", dev, "--quiet", *data, *extra]
        times[steps] = cli.run(f"surface_{steps}x{steps}", "landscape.plot", args)[0]
    per_point = (times[n] - times[2]) / (n * n - 4)
    total = times[n] if n == full else times[2] + (full * full - 4) * per_point
    how = "measured" if n == full else f"extrapolated from 2x2 and {n}x{n} grids"
    return {"checkpoint": ckpt.parent.name, "images": s["surface_images"], "grid_timed": n, "seconds_2x2": times[2],
            f"seconds_{n}x{n}": times[n], "seconds_per_point": per_point, "seconds_51x51": total,
            "extrapolated": n != full, "points_per_forward": ppf if extra else None,
            "summary": f"{total:.0f} s for 51x51 points on {s['surface_images']} images ({how}; "
                       f"{per_point:.3f} s per point" + ("" if extra else "; --points-per-forward not available") + ")"}


def naswot(cli: Cli, s: dict, dev: str, ckpt: Path | None) -> dict:
    """Seconds per scored checkpoint = t(two checkpoints) - t(one); start-up and data loading cancel. The second
    is the run's last milestone checkpoint (diversity.score pools checkpoints by their run's config.json)."""
    milestones = sorted(ckpt.parent.glob("ckpt_e*.pt")) if ckpt is not None else []
    if not milestones:
        raise Skip("needs a trained run directory with a milestone checkpoint (every training run failed)")
    second = milestones[-1]
    base = [*s["naswot"], "--device", dev, "--quiet"] + (["--data-dir", s["data_dir"]] if s["data_dir"] else [])
    one = cli.run("naswot_1", "diversity.score", [str(ckpt), *base])[0]
    two = cli.run("naswot_2", "diversity.score", [str(ckpt), str(second), *base])[0]
    return {"checkpoint": ckpt.parent.name, "args": s["naswot"], "seconds_one_checkpoint_wall": one,
            "seconds_two_checkpoints_wall": two, "seconds_per_checkpoint": two - one,
            "summary": f"{two - one:.2f} s per checkpoint ({' '.join(s['naswot'])}; t(2) - t(1); "
                       f"one checkpoint end to end {one:.1f} s)"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    if a.surface_steps < 3:
        raise UserError(f"--surface-steps {a.surface_steps} must be at least 3 (a 2x2 grid is the baseline)")
    device = resolve_device(a.device)
    if device.type != "cuda" and not a.smoke:
        raise UserError("no CUDA GPU is visible (or --device cpu): run the full check on a GPU machine, "
                        "or pass --smoke for the tiny CPU check")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d")
    out = Path(a.out) if a.out else REPO / "results" / f"gpu_check-{re.sub(r'[^A-Za-z0-9._-]+', '_', gpu or 'cpu')}-{date}"
    if (out / "gpu_check.json").exists() and not a.overwrite:
        raise UserError(f"{out / 'gpu_check.json'} exists; pass --overwrite to replace it or choose another --out")
    env = {"command": shlex.join([sys.executable, sys.argv[0], *argv]), "torch": torch.__version__,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
           "gpu": gpu, "device": str(device), "smoke": a.smoke, **{k: v for k, v in provenance(device).items()
                                                                    if k in ("git_commit", "utc_time")}}
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        res = run_checks(a, device, Path(tmp), Cli(out / "logs", a.quiet))
    failed = write_report(out, env, res)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
