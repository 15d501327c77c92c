"""Per-point cost of a loss surface: orthokd's engine options vs the PyPI loss-landscapes library vs a Li-style
loop, with one bare eager forward pass over the same images as the yardstick, all timed in the same run.

- ours (baseline of the option ratios): landscape.engine.SurfaceEngine, one point per forward (BN folded into
  the convolutions at each point, channels_last, images resident in large batches).
- ours P=4, P=16: the same engine with 4 / 16 grid points per vmapped forward (torch.func).
- ours bf16: one point per forward under bf16 autocast; also the largest |delta loss| and |delta acc| against
  fp32 over the whole grid.
- ours no-fold-bn: one point per forward on the unfolded network.
- loss-landscapes: ``random_plane(model, Loss(cross_entropy, x, y), steps=S, normalization="filter")``: one
  forward of all images per point, eager NCHW (its zig-zag walk adds steps in place).
- li-style: Li et al.'s loop: per point, set p.data = w + a*dx + b*dy, then evaluate in batches of 128.
- bare forward: model(x) once, eval mode, eager NCHW fp32.
Each side computes a S x S grid; seconds per point are medians over --repeats. A ratio above 1 is faster than the
baseline. landscape.engine.DEFAULT_POINTS_PER_FORWARD holds the best P measured per device type. Last line:
speedup_vs_loss_landscapes: X.XX
"""
from __future__ import annotations

import argparse
import copy
import sys

import torch
import torch.nn.functional as F
from timing import interleaved, medians, print_load

from landscape.directions import random_directions
from landscape.engine import SurfaceEngine
from training.data.datasets import load_split
from training.models.registry import build_model
from training.runtime.device import resolve_device
from training.store.checkpoint import load_model


def time_all(fns: dict, repeats: int, sync=lambda: None) -> dict[str, float]:
    """Median seconds of each function over ``repeats`` rounds (at least 3) in which the functions take turns
    (bench/timing.py), after a warm-up round that also drops a function this device cannot run."""
    for name, fn in list(fns.items()):
        try:
            fn()
        except RuntimeError as err:  # e.g. bf16 autocast not implemented for an op on this device
            print(f"{name}: unavailable ({str(err).splitlines()[0]})", file=sys.stderr)
            del fns[name]
    return medians(interleaved(fns, repeats, warmup=0, sync=sync))  # every function returns None: timed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet56")
    p.add_argument("--checkpoint", default=None,
                   help="a trained orthokd checkpoint instead of a fresh --model (the bf16 deviation of a real model)")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--steps", type=int, default=5, help="grid is steps x steps")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto [cpu]")
    p.add_argument("--quick", action="store_true", help="resnet20, 4 x 4 grid, 3 repeats")
    a = p.parse_args(argv)
    if a.quick:
        a.model, a.steps, a.repeats = "resnet20", 4, 3
    print_load("before")
    from loss_landscapes import random_plane
    from loss_landscapes.metrics import Loss

    device = resolve_device(a.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    if a.checkpoint:
        model, ckpt = load_model(a.checkpoint)
        a.model = f"{ckpt['arch']['name']} (trained: {a.checkpoint})"
    else:
        model = build_model(a.model, 10).eval()
        # as in any trained net: loss-landscapes' filter normalization divides by 0 on all-zero BN beta
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.bias.normal_(0, 0.01)
    model.eval()
    data = load_split("cifar10", "train", None, a.images)
    dirs = random_directions(model, 2)
    coords = [(float(i), float(j)) for i in torch.linspace(-1, 1, a.steps) for j in torch.linspace(-1, 1, a.steps)]
    n = len(coords)
    options = {"per-point": {}, "P=4": {"points_per_forward": 4}, "P=16": {"points_per_forward": 16},
               "bf16": {"bf16": True}, "no-fold-bn": {"fold_bn": False}}
    engines = {k: SurfaceEngine(model, dirs, data.normalized(), data.labels, device, **{"points_per_forward": 1, **kw})
               for k, kw in options.items()}
    results: dict[str, list] = {}
    fns = {f"ours_{k}": (lambda k=k, e=e: results.__setitem__(k, e.points(coords))) for k, e in engines.items()}

    model = model.to(device)
    x, y = data.normalized(device), data.labels.to(device)
    dirs = [{k: v.to(device) for k, v in d.items()} for d in dirs]

    def theirs():
        random_plane(copy.deepcopy(model), Loss(F.cross_entropy, x, y), distance=1, steps=a.steps,
                     normalization="filter", deepcopy_model=False)

    li_net = copy.deepcopy(model)
    weights = [p.detach().clone() for p in li_net.parameters()]
    names = [name for name, _ in li_net.named_parameters()]

    def li_style():
        with torch.no_grad():
            for ca, cb in coords:
                for prm, w, name in zip(li_net.parameters(), weights, names):
                    prm.data = w + ca * dirs[0][name] + cb * dirs[1][name]
                total = 0.0
                for s in range(0, len(y), 128):
                    total += F.cross_entropy(li_net(x[s : s + 128]), y[s : s + 128], reduction="sum").item()

    def bare():
        with torch.no_grad():
            model(x)

    fns.update(bare=bare, loss_landscapes=theirs, li_style=li_style)
    t = time_all(fns, a.repeats, sync)
    print_load("after")
    t_bare, t_ll, t_li = t["bare"], t["loss_landscapes"] / n, t["li_style"] / n
    t_opt = {k: t[f"ours_{k}"] / n for k in engines if f"ours_{k}" in t}
    t_ours = t_opt["per-point"]
    print(f"model {a.model}, {a.images} images, {a.steps}x{a.steps} grid, {device}, {torch.get_num_threads()} threads, "
          f"medians of {a.repeats}", file=sys.stderr)
    print(f"bare_forward_s: {t_bare:.4f}")
    for name, sec in t_opt.items():
        print(f"ours_{name}_s_per_point: {sec:.4f}  ({sec / t_bare:.2f} x bare forward, {t_ours / sec:.2f} x per-point "
              "speed)")
    best = min((k for k in t_opt if k == "per-point" or k.startswith("P=")), key=t_opt.get)
    print(f"best_points_per_forward_{device.type}: {1 if best == 'per-point' else int(best[2:])}")
    ref = results["per-point"]
    for name in ("P=4", "P=16", "no-fold-bn", "bf16"):
        if name in results:
            dl = max(abs(u[0] - v[0]) for u, v in zip(results[name], ref))
            rl = max(abs(u[0] - v[0]) / abs(v[0]) for u, v in zip(results[name], ref))
            da = max(abs(u[1] - v[1]) for u, v in zip(results[name], ref))
            print(f"max_abs_delta_{name}_vs_fp32_per_point: loss {dl:.3g} (relative {rl:.2g}), acc {da:.3g} "
                  f"%-points over {n} points, {a.images} images")
    print(f"loss_landscapes_s_per_point: {t_ll:.4f}  ({t_ll / t_bare:.2f} x bare forward)")
    print(f"li_style_s_per_point: {t_li:.4f}  ({t_li / t_bare:.2f} x bare forward)")
    print(f"speedup_vs_li_style: {t_li / t_ours:.2f}")
    print(f"speedup_vs_loss_landscapes: {t_ll / t_ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
