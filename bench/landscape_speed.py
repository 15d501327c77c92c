"""Per-point cost of a loss surface: orthokd's engine vs the PyPI loss-landscapes library vs a Li-style loop,
with one bare eager forward pass over the same images as the yardstick, all timed in the same run.

- ours: landscape.engine.SurfaceEngine (absolute coordinates, BN folded into the convolutions at each point,
  channels_last, images resident in large batches).
- loss-landscapes: ``random_plane(model, Loss(cross_entropy, x, y), steps=S, normalization="filter")``: one
  forward of all images per point, eager NCHW (its zig-zag walk adds steps in place).
- li-style: Li et al.'s loop: per point, set p.data = w + a*dx + b*dy, then evaluate in batches of 128.
- bare forward: model(x) once, eval mode, eager NCHW fp32.
Each side computes a S x S grid; seconds per point are medians over --repeats. Last line:
speedup_vs_loss_landscapes: X.XX
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from landscape.directions import random_directions
from landscape.engine import SurfaceEngine
from training.data import load_split
from training.models import build_model


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet56")
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--steps", type=int, default=5, help="grid is steps x steps")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="resnet20, 4 x 4 grid, 2 repeats (< 60 s on 2 cores)")
    a = p.parse_args(argv)
    if a.quick:
        a.model, a.steps, a.repeats = "resnet20", 4, 2
    from loss_landscapes import random_plane
    from loss_landscapes.metrics import Loss

    torch.manual_seed(0)
    model = build_model(a.model, 10).eval()
    with torch.no_grad():  # as in any trained net: loss-landscapes' filter normalization divides by 0 on all-zero BN beta
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_(0, 0.01)
    data = load_split("cifar10", "train", None, a.images)
    x, y = data.normalized(), data.labels
    dirs = random_directions(model, 2)
    coords = [(float(i), float(j)) for i in torch.linspace(-1, 1, a.steps) for j in torch.linspace(-1, 1, a.steps)]
    n = len(coords)
    engine = SurfaceEngine(model, dirs, x, y, torch.device("cpu"))

    def ours():
        for c in coords:
            engine.point(c)

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

    t_bare = time_it(bare, a.repeats * 3)
    t_ours = time_it(ours, a.repeats) / n
    t_ll = time_it(theirs, a.repeats) / n
    t_li = time_it(li_style, a.repeats) / n
    print(f"model {a.model}, {a.images} images, {a.steps}x{a.steps} grid, {torch.get_num_threads()} threads", file=sys.stderr)
    print(f"bare_forward_s: {t_bare:.4f}")
    print(f"orthokd_s_per_point: {t_ours:.4f}  ({t_ours / t_bare:.2f} x bare forward)")
    print(f"loss_landscapes_s_per_point: {t_ll:.4f}  ({t_ll / t_bare:.2f} x bare forward)")
    print(f"li_style_s_per_point: {t_li:.4f}  ({t_li / t_bare:.2f} x bare forward)")
    print(f"speedup_vs_li_style: {t_li / t_ours:.2f}")
    print(f"speedup_vs_loss_landscapes: {t_ll / t_ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
