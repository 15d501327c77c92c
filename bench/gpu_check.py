"""GPU readiness check that fits one 10-minute call on a bare GPU machine (a fresh copy of this repository, its own
torch, no ../shared, none of the study-only packages), run in this one process.

Sections, in order (each skipped, with the reason recorded, when its estimated time no longer fits --budget-s):
- graphs_vs_eager: the captured training step (--cuda-graphs) against the eager step from the same init (single
  and packed x2, CutMix), largest relative weight difference;
- train: ResNet-56 s/step and s/epoch (50,000 images, extrapolated from a timed slice) in fp32 (IEEE), TF32,
  bf16, bf16 + CUDA graphs, and the per-epoch test evaluation; the sides take turns epoch by epoch, median of 3;
- packed: 5 seeds in one captured bf16 step vs the same 5 runs one after another;
- surface: seconds per grid point on 50,000 images in fp32, TF32 and bf16, extrapolated to 51 x 51, with each
  precision's largest deviation from fp32;
- naswot: seconds to score one checkpoint (5 batches of 128);
- eta: the study's time against the goals (one 160-epoch run <= 5 min, 26 runs <= 90 min, a 51 x 51 surface on
  50k images <= 3 min);
- compile: bf16 + torch.compile (last: its compilation is the slowest and least predictable part), then the ETA
  again with it.
Each measurement carries its kernel counts per step / point / batch from torch.profiler. Every measurement is a
JSON line in OUT/measurements.jsonl, written the moment it exists (a cut-off keeps what was measured); at the end
OUT/summary.md. Data: synthetic CIFAR-shaped images by default (speed does not depend on pixel values),
--data-dir for real CIFAR-10 (an npz folder or torchvision's layout). --toy runs the same sections at CPU toy size.
Exit 0 when nothing failed, 1 otherwise, 2 on bad input.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gpu_check_sections as sec
import torch
from gpu_check_record import Recorder, Skip
from timing import load_note

from training.cli.common import Parser, positive_float, run_cli
from training.data.datasets import load_split
from training.errors import UserError
from training.runtime.device import resolve_device
from training.store.files import provenance

REPO = Path(__file__).resolve().parent.parent
PRESETS = {  # name -> (sizes, time budget of the measurements in s, estimated s per section)
    "10min": (sec.Sizes(model=["resnet56", "16"], train_steps=200, pack_steps=60, surface_images=50_000,
                        surface_slice=4, naswot=(5, 128)), 450.0,
              {"graphs_vs_eager": 40, "train": 100, "packed": 60, "surface": 60, "naswot": 30, "eta": 1,
               "compile": 150}),
}
TOY_ESTIMATES = {name: 5 for name in PRESETS["10min"][2]}


def build_parser() -> Parser:
    p = Parser(prog="bench/gpu_check.py", description=__doc__.split("\n\n")[0],
               epilog="Example (GPU, one 10-minute call): python bench/gpu_check.py --preset 10min")
    p.add_argument("--preset", choices=list(PRESETS), default="10min",
                   help="sizes and time budget: 10min = ResNet-56, measurements within 450 s, the rest margin [10min]")
    p.add_argument("--toy", action="store_true",
                   help="the preset's sections at CPU toy size (ResNet-8 width 4, a few steps, 128 images per "
                        "surface point; torch.compile skipped): a check that every path runs")
    p.add_argument("--budget-s", type=positive_float, default=None,
                   help="seconds the measurements may take; a section whose estimate no longer fits is skipped "
                        "[the preset's]")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"),
                   help="auto = cuda when available; without --toy a GPU is required [auto]")
    p.add_argument("--data-dir", default=None,
                   help="real CIFAR-10: a folder of cifar10-train.npz/cifar10-test.npz or torchvision's layout "
                        "[synthetic CIFAR-shaped images]")
    p.add_argument("--out", default=None,
                   help="folder for measurements.jsonl and summary.md; must not hold a measurements.jsonl "
                        "[results/gpu_check-DEVICE-UTCTIME]")
    p.add_argument("--quiet", action="store_true", help="no line per measurement on stdout")
    return p


def data(a, n_train: int, n_test: int) -> tuple[Any, Any]:
    """(train, test) ImageSets: real CIFAR-10 from --data-dir, else synthetic."""
    if a.data_dir is None:
        return sec.synthetic_set(n_train, 0), sec.synthetic_set(n_test, 1)
    folder = Path(a.data_dir)
    dataset = "npz" if any(folder.glob("*-train.npz")) else "cifar10"
    return load_split(dataset, "train", str(folder)), load_split(dataset, "test", str(folder))


def eta(rec: Recorder, m: dict[str, Any]) -> None:
    """The study's time on this device from the measurements ``m`` against the goals: one 160-epoch ResNet-56
    run <= 5 min, the 26 runs <= 90 min, a 51 x 51 surface on 50k images <= 3 min."""
    per_step = m.get("train", {})
    if not per_step:
        raise Skip("needs a training measurement")
    ev = m.get("eval_s", 0.0)
    best = min(per_step, key=per_step.get)
    run_s = 160 * (per_step[best] * sec.EPOCH_STEPS + ev)
    study_single = 26 * run_s
    study = study_single
    if "packed" in m:
        study = min(study, math.ceil(26 / sec.PACK) * 160 * (m["packed"] * sec.EPOCH_STEPS + sec.PACK * ev))
    surfaces = m.get("surface", {})
    best_surface = min(surfaces, key=surfaces.get) if surfaces else None
    surface_s = surfaces[best_surface] * sec.SURFACE_POINTS if surfaces else None
    total = study + 15 * (surface_s or 0.0) + 25 * m.get("naswot", 0.0)
    goals = {"run_160_epochs_s": (run_s, 300.0), "study_26_runs_s": (study, 5400.0)}
    if surface_s is not None:
        goals["surface_51x51_50k_s"] = (surface_s, 180.0)
    rec.write("eta", "study", "ok", best_training=best, best_surface_precision=best_surface, total_s=total,
              goals={k: {"eta_s": v, "goal_s": g, "met": v <= g} for k, (v, g) in goals.items()},
              summary=f"one run {run_s / 60:.1f} min ({best}; goal 5), 26 runs {study / 60:.0f} min (goal 90), "
                      + (f"51x51 surface {surface_s:.0f} s ({best_surface}; goal 180), " if surface_s else "")
                      + f"whole study with 15 surfaces and 25 NASWOT scores {total / 3600:.2f} h")


def run_sections(rec: Recorder, sizes: sec.Sizes, estimates: dict[str, float], device: torch.device, a) -> None:
    n_train = 50_000 if not a.toy else max(sizes.train_steps, sizes.equal_steps) * sec.BATCH + sizes.surface_images
    train, test = data(a, n_train, 10_000 if not a.toy else 256)
    rec.write("environment", "data", "ok", train=train.description, test=test.description, train_images=len(train),
              summary=f"train: {train.description}; test: {test.description}")
    m: dict[str, Any] = {}
    rec.section(
        "graphs_vs_eager", estimates["graphs_vs_eager"], lambda: sec.graphs_equal_eager(rec, sizes, train, device)
    )

    def train_section() -> None:
        m["train"], runs = sec.train_speed(rec, sizes, train, device, ["fp32", "tf32", "bf16", "bf16_graphs"])
        if "fp32" in runs:
            m["model"] = runs["fp32"].student
        m["eval_s"] = sec.eval_seconds(rec, sizes, test, device)

    rec.section("train", estimates["train"], train_section)
    packed = rec.section("packed", estimates["packed"], lambda: sec.packed_speed(rec, sizes, train, device))
    if packed:
        m["packed"] = packed[0]

    def surface_section() -> None:
        m.setdefault("model", sec.fresh_model(sizes, device))  # the fp32 run when the train section ran
        m["surface"] = sec.surface_speed(rec, sizes, train, device, m["model"])

    rec.section("surface", estimates["surface"], surface_section)
    naswot = rec.section("naswot", estimates["naswot"], lambda: sec.naswot_speed(rec, sizes, train, device))
    if naswot is not None:
        m["naswot"] = naswot
    rec.section("eta", estimates["eta"], lambda: eta(rec, m))

    def compile_section() -> None:
        if a.toy:
            raise Skip("toy: torch.compile takes tens of seconds on a CPU; it is timed on the GPU")
        per_step, _ = sec.train_speed(rec, sizes, train, device, ["bf16_compile"])
        m.setdefault("train", {}).update(per_step)
        eta(rec, m)

    rec.section("compile", estimates["compile"], compile_section)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(argv)
    device = resolve_device(a.device)
    if device.type != "cuda" and not a.toy:
        raise UserError("no CUDA GPU is visible (or --device cpu): run the check on a GPU machine, "
                        "or pass --toy for the CPU toy-size run")
    if a.data_dir is not None and not Path(a.data_dir).is_dir():
        raise UserError(f"--data-dir {a.data_dir} is not a folder; pass CIFAR-10's folder or leave it out (synthetic)")
    sizes, budget, estimates = PRESETS[a.preset]
    if a.toy:
        sizes, budget, estimates = sec.toy(sizes), 240.0, TOY_ESTIMATES
    budget = a.budget_s or budget
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", gpu or "cpu") + ("-toy" if a.toy else "")
    out = Path(a.out) if a.out else REPO / "results" / f"gpu_check-{name}-{stamp}"
    if (out / "measurements.jsonl").exists():
        raise UserError(f"{out / 'measurements.jsonl'} exists (earlier results are kept); choose another --out")
    rec = Recorder(out / "measurements.jsonl", budget, a.quiet)
    rec.write("environment", "machine", "ok", command=shlex.join([sys.executable, "bench/gpu_check.py", *argv]),
              preset=a.preset, toy=a.toy, budget_s=budget, gpu=gpu, cuda=torch.version.cuda,
              cudnn=torch.backends.cudnn.version() if device.type == "cuda" else None, load=load_note(),
              **provenance(device),
              summary=f"{gpu or 'CPU'}, torch {torch.__version__}, CUDA {torch.version.cuda}; {load_note()}")
    try:
        run_sections(rec, sizes, estimates, device, a)
    finally:
        rec.write("environment", "end", "ok", load=load_note(), summary=f"{load_note()}")
        failed = rec.close(out / "summary.md", f"GPU check ({a.preset}{', toy' if a.toy else ''}): {gpu or 'CPU'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
