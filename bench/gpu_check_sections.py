"""The measurements of bench/gpu_check.py, one function per section; each writes its results through ``rec``
(gpu_check_record.Recorder) the moment it has them. Sizes come from a ``Sizes`` (the preset, or its toy version).

Training numbers come from ``training.engine.loop.train_one_epoch`` (the loop ``training.train`` runs, its per-step
metric
sums included) on a timed slice of ``Sizes.train_steps`` steps at batch 64, s/epoch extrapolated to the
782 steps of a 50,000-image epoch. Kernel counts come from torch.profiler over a few steps of the bare step
(forward, backward, SGD: ``training.engine.loop.sgd_step``, replayed when captured), after its warm-up.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from gpu_check_record import Recorder
from timing import interleaved

from diversity.naswot import score_batches
from landscape.compute import EngineOptions
from landscape.directions import random_directions
from landscape.engine import SurfaceEngine
from training.config import TrainConfig
from training.data.batches import DeviceSplit, epoch_generators
from training.data.datasets import ImageSet
from training.engine.graphs import GraphedStep
from training.engine.loop import evaluate, sgd_step, train_one_epoch, training_batches
from training.engine.packed_step import train_packed_epoch
from training.engine.run import Run
from training.runtime.backends import backend_settings, configure_backends
from training.runtime.distributed import DistInfo

EPOCH_IMAGES, BATCH = 50_000, 64
EPOCH_STEPS = math.ceil(EPOCH_IMAGES / BATCH)  # 782: 781 full batches and one of 16
SURFACE_POINTS = 51 * 51
PACK = 5
# training variants: name -> TrainConfig fields (IEEE fp32 unless tf32; channels_last everywhere, as the CLI)
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {}, "tf32": {"tf32": True}, "bf16": {"amp_bf16": True},
    "bf16_graphs": {"amp_bf16": True, "cuda_graphs": True},
    "bf16_compile": {"amp_bf16": True, "compile": True},
}
LAUNCH_CALLS = {"cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx", "cudaLaunchKernelExC", "cudaGraphLaunch",
                "cuGraphLaunch"}


@dataclass(frozen=True)
class Sizes:
    model: list[str]  # TrainConfig model and width
    train_steps: int  # timed steps per training epoch (batch 64)
    pack_steps: int  # timed steps per packed epoch
    surface_images: int
    surface_slice: int  # grid points timed per precision and round
    naswot: tuple[int, int]  # (batches, batch size) per checkpoint
    equal_steps: int = 12  # steps of the graphs-vs-eager comparison: 3 eager warm-up steps, the capture, replays
    rounds: int = 3  # interleaved timed rounds (median)


def sync(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def kernel_counts(fn: Callable[[], Any], calls: int, device: torch.device) -> dict[str, float | None]:
    """Per call of ``fn`` under torch.profiler: GPU kernels run, host launch calls (kernel and graph launches),
    and aten operators dispatched (the host's work; a replayed graph dispatches none)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    try:
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            for _ in range(calls):
                fn()
            sync(device)()
        events = prof.events()
    except Exception as e:  # the timing stands without the counts (e.g. a machine without CUPTI)
        return {"kernels_per_call": None, "launches_per_call": None, "aten_ops_per_call": None,
                "profiler_error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"}
    kernels = sum(e.device_type == DeviceType.CUDA for e in events)
    return {"kernels_per_call": kernels / calls if cuda else None,
            "launches_per_call": sum(e.name in LAUNCH_CALLS for e in events) / calls if cuda else None,
            "aten_ops_per_call": sum(e.name.startswith("aten::") for e in events) / calls}


def synthetic_set(n: int, seed: int) -> ImageSet:
    """CIFAR-shaped stand-in data: uniform random pixels and labels (speed only; no accuracy meaning)."""
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                    torch.randint(0, 10, (n,), generator=g), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                    f"synthetic CIFAR-shaped ({n} uniform random images)")


def config(sizes: Sizes, **fields: Any) -> TrainConfig:
    model = dict(zip(("model", "width"), (sizes.model[0], int(sizes.model[1]))))
    return TrainConfig(**model, batch_size=BATCH, **fields)


def fresh_model(sizes: Sizes, device: torch.device) -> torch.nn.Module:
    """The preset's network at its seed-0 initialisation, as training.train builds it."""
    return Run(config(sizes), 10, None, None, device, DistInfo()).student


def _step_caller(run: Run, data: DeviceSplit, device: torch.device) -> Callable[[], Any]:
    """One bare training step per call (the loop's ``sgd_step``, as a GraphedStep when captured), cycling over a
    few full batches drawn once."""
    cfg = run.cfg
    step = sgd_step(run.train_module, run.optimizer, device, cfg.amp_bf16, cache=not cfg.cuda_graphs)
    if cfg.cuda_graphs:
        step = GraphedStep(step, capture=device.type == "cuda", mixes=False)
    full = (b for b in training_batches(data, cfg, epoch_generators(0, 1, device), DistInfo())
            if b[0].shape[0] == cfg.batch_size)
    batches = itertools.cycle(list(itertools.islice(full, 6)))
    run.objective.train()
    return lambda: step([next(batches)])


def step_kernels(run: Run, data: DeviceSplit, device: torch.device) -> dict[str, float | None]:
    """kernel_counts of one training step after 5 warm-up steps (3 eager + the capture + 1 replay when captured)."""
    configure_backends(run.cfg.tf32, False)
    call = _step_caller(run, data, device)
    for _ in range(5):
        call()
    return kernel_counts(call, 3, device)


def graphs_equal_eager(rec: Recorder, sizes: Sizes, train: ImageSet, device: torch.device) -> None:
    """The captured step against the eager step from the same init: one epoch of CutMix (lambda as a device
    tensor) at lr 0.02, single and packed x2; largest relative weight difference (Frobenius, per tensor)."""
    steps = sizes.equal_steps
    data = DeviceSplit.from_imageset(train.head(steps * BATCH), device)

    def final(graphs: bool, packed: bool) -> list[dict[str, torch.Tensor]]:
        configure_backends(False, False)
        cfgs = [
            config(sizes, method="cutmix", lr=0.02, seed=s, cuda_graphs=graphs) for s in ((0, 1) if packed else (0,))
        ]
        runs = [Run(c, 10, None, None, device, DistInfo()) for c in cfgs]
        if packed:
            train_packed_epoch(runs, data, 1, device)
        else:
            train_one_epoch(runs[0].train_module, runs[0].optimizer, data, cfgs[0], 1, DistInfo(), device)
        return [{k: v.detach().double().cpu() for k, v in r.student.state_dict().items() if v.is_floating_point()}
                for r in runs]

    for packed in (False, True):
        eager, graphs = final(False, packed), final(True, packed)
        rel = max(((a[k] - b[k]).norm() / b[k].norm().clamp_min(1e-12)).item()
                  for a, b in zip(graphs, eager) for k in a)
        ok = math.isfinite(rel) and rel < 1e-3
        name = "packed_x2" if packed else "single"
        rec.write("graphs_vs_eager", name, "ok" if ok else "failed", max_relative_weight_difference=rel,
                  tolerance=1e-3, steps=steps, captured=device.type == "cuda",
                  summary=f"{name}: after {steps} CutMix steps the captured step's weights differ from eager by at "
                          "most "
                          f"{rel:.2e} (relative; tolerance 1e-3)")


def train_speed(rec: Recorder, sizes: Sizes, train: ImageSet, device: torch.device, names: list[str]
                ) -> tuple[dict[str, float], dict[str, Run]]:
    """s/step of each variant in ``names`` (interleaved rounds, one timed epoch each, median) and its kernel
    counts; returns ({variant: seconds per step}, {variant: its trained run}) of the variants that ran. A variant
    that fails is recorded as failed and leaves the rounds; the others go on."""
    data = DeviceSplit.from_imageset(train.head(sizes.train_steps * BATCH), device)
    runs = {n: Run(config(sizes, **VARIANTS[n]), 10, None, None, device, DistInfo()) for n in names}
    epoch = itertools.count(1)
    broken: set[str] = set()

    def one_epoch(name: str) -> Callable[[], float]:
        def fn() -> float:
            if name in broken:
                return math.nan
            run = runs[name]
            configure_backends(run.cfg.tf32, False)
            try:
                st = train_one_epoch(run.train_module, run.optimizer, data, run.cfg, next(epoch), DistInfo(), device)
            except Exception as e:
                broken.add(name)
                rec.write("train", name, "failed", reason=f"{type(e).__name__}: "
                                                          f"{(str(e).splitlines() or [''])[0][:300]}")
                return math.nan
            rec.write("train_round", name, "ok", seconds_per_step=st.seconds / st.steps, steps=st.steps)
            return st.seconds / st.steps
        return fn

    rounds = interleaved({n: one_epoch(n) for n in names}, sizes.rounds, warmup=1)
    per_step = {}
    for n in (n for n in names if n not in broken):
        s = statistics.median(rounds[n])
        per_step[n] = s
        rec.write("train", n, "ok", seconds_per_step=s, seconds_per_epoch_50k=s * EPOCH_STEPS, rounds=rounds[n],
                  config={k: v for k, v in VARIANTS[n].items()}, **step_kernels(runs[n], data, device),
                  summary=f"{n}: {s * 1e3:.2f} ms/step, {s * EPOCH_STEPS:.2f} s per 50k-image epoch "
                          f"(median of {len(rounds[n])} interleaved epochs of {sizes.train_steps} steps)")
    return per_step, {n: r for n, r in runs.items() if n not in broken}


def eval_seconds(rec: Recorder, sizes: Sizes, test: ImageSet, device: torch.device) -> float:
    """Seconds of the per-epoch test evaluation (10,000 images at the CLI's batch 1000, bf16), median of 3."""
    run = Run(config(sizes, amp_bf16=True), 10, None, None, device, DistInfo())
    data = DeviceSplit.from_imageset(test, device)
    def fn() -> None:
        evaluate(run.student, data, DistInfo(), 1000, True, True)

    t = interleaved({"eval": fn}, 3, sync=sync(device))["eval"]
    s = statistics.median(t)
    rec.write("train", "evaluation", "ok", seconds=s, images=len(test),
              summary=f"test evaluation {s:.2f} s per epoch ({len(test)} images, bf16)")
    return s


def packed_speed(rec: Recorder, sizes: Sizes, train: ImageSet, device: torch.device) -> tuple[float, float]:
    """PACK seeds packed in one captured bf16 step vs the same PACK runs one after another (captured bf16
    single steps), interleaved; returns (packed, sequential) seconds per step of all PACK runs."""
    data = DeviceSplit.from_imageset(train.head(sizes.pack_steps * BATCH), device)
    cfgs = [config(sizes, amp_bf16=True, cuda_graphs=True, seed=s) for s in range(PACK)]
    packed_runs = [Run(c, 10, None, None, device, DistInfo()) for c in cfgs]
    single_runs = [Run(c, 10, None, None, device, DistInfo()) for c in cfgs]
    epoch = itertools.count(1)
    configure_backends(False, False)

    def packed() -> float:
        return train_packed_epoch(packed_runs, data, next(epoch), device)[0].seconds

    def sequential() -> float:
        e = next(epoch)
        return sum(train_one_epoch(r.train_module, r.optimizer, data, r.cfg, e, DistInfo(), device).seconds
                   for r in single_runs)

    t = interleaved({"packed": packed, "sequential": sequential}, sizes.rounds, warmup=1)
    p, s = (statistics.median(t[k]) / sizes.pack_steps for k in ("packed", "sequential"))
    rec.write("packed", f"packed_x{PACK}_vs_sequential", "ok", packed_seconds_per_step=p, sequential_seconds_per_step=s,
              ratio=p / s, rounds=t, packed_seconds_per_epoch_50k=p * EPOCH_STEPS,
              summary=f"{PACK} seeds packed (bf16 + CUDA graphs; torch.compile does not apply to the vmapped step): "
                      f"{p * 1e3:.2f} ms per step of all {PACK} vs {s * 1e3:.2f} ms for {PACK} captured single steps "
                      f"one after another: {p / s:.2f}x the time")
    return p, s


def surface_speed(rec: Recorder, sizes: Sizes, train: ImageSet, device: torch.device,
                  model: torch.nn.Module) -> dict[str, float]:
    """Seconds per grid point of ``model`` on ``surface_images`` images in fp32, TF32 and bf16 (a slice of points
    of the 51 x 51 grid from the centre to the corner (1, -1), interleaved rounds), extrapolated to 51 x 51, and
    each precision's largest deviation from fp32 on the slice."""
    data = train.head(sizes.surface_images)
    dirs = random_directions(model, 2)
    grid = torch.linspace(-1, 1, 51).tolist()
    coords = [(grid[25 + i], grid[25 - i]) for i in torch.linspace(0, 25, sizes.surface_slice).round().int().tolist()]
    opts = {"fp32": EngineOptions(), "tf32": EngineOptions(tf32=True), "bf16": EngineOptions(bf16=True)}
    engines = {k: SurfaceEngine(model, dirs, data.normalized(), data.labels, device, o.batch_size, o.bf16)
               for k, o in opts.items()}
    results: dict[str, list] = {}

    def slice_of(name: str) -> Callable[[], None]:
        def fn() -> None:
            with backend_settings(opts[name].tf32, opts[name].cudnn_benchmark):
                results[name] = engines[name].points(coords)
        return fn

    t = interleaved({k: slice_of(k) for k in opts}, sizes.rounds, warmup=1, sync=sync(device))
    per_point = {}
    for k, o in opts.items():
        s = statistics.median(t[k]) / len(coords)
        per_point[k] = s
        dev_loss = max(abs(a[0] - b[0]) / abs(b[0]) for a, b in zip(results[k], results["fp32"]))
        dev_acc = max(abs(a[1] - b[1]) for a, b in zip(results[k], results["fp32"]))
        with backend_settings(o.tf32, o.cudnn_benchmark):
            counts = kernel_counts(lambda k=k: engines[k].points(coords[:1]), 1, device)
        rec.write("surface", k, "ok", seconds_per_point=s, seconds_51x51=s * SURFACE_POINTS, images=len(data),
                  points_timed=len(coords), extrapolated=True, numerics=o.numerics(device),
                  max_relative_loss_deviation_from_fp32=dev_loss, max_accuracy_deviation_from_fp32_points=dev_acc,
                  **counts, summary=f"{k}: {s:.4f} s per point on {len(data)} images -> 51x51 in "
                                    f"{s * SURFACE_POINTS:.0f} s (extrapolated from {len(coords)} points x "
                                    f"{len(t[k])} rounds); vs fp32: loss {dev_loss:.2e} relative, accuracy "
                                    f"{dev_acc:.2f} points")
    return per_point


def naswot_speed(rec: Recorder, sizes: Sizes, train: ImageSet, device: torch.device) -> float:
    """Seconds to score one checkpoint (``sizes.naswot`` batches x images, NASWOT v1), median of the rounds."""
    model = fresh_model(sizes, device)
    n, size = sizes.naswot
    batches = list(train.head(n * size).normalized(device).split(size))

    def fn() -> None:
        score_batches(model, batches)

    t = interleaved({"naswot": fn}, sizes.rounds, sync=sync(device))
    s = statistics.median(t["naswot"])
    rec.write("naswot", "per_checkpoint", "ok", seconds_per_checkpoint=s, batches=n, batch_size=size,
              **kernel_counts(lambda: score_batches(model, batches[:1]), 1, device),
              summary=f"{s:.2f} s per checkpoint ({n} batches of {size}; kernels counted on one batch)")
    return s


def toy(sizes: Sizes) -> Sizes:
    """The same sections at CPU toy size: ResNet-8 width 4, a few steps, 128 images per surface point."""
    return dataclasses.replace(sizes, model=["resnet8", "4"], train_steps=6, pack_steps=2, surface_images=128,
                               surface_slice=2, naswot=(1, 16), equal_steps=4)
