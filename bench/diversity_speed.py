"""NASWOT v1 scoring time per checkpoint (ResNet-56, N = 128, the shared-batch path of diversity.score).

Baseline, timed in the same run: NASWOT's own recipe, per batch: input gradient with weight gradients
still enabled (the reference code never freezes the weights), NCHW, then numpy corrcoef + eigvalsh.
Ours: diversity.scoring (frozen weights so backward skips the weight-gradient convolutions).
The two sides take turns (ours, reference, ours, ...; bench/timing.py), median of --repeats (at least 3) rounds,
the host load printed before and after. Last line: seconds_per_checkpoint: X.XX (ours, --batches batches per
checkpoint).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from timing import interleaved, medians, print_load

from diversity.batches import draw_batches
from diversity.config import ScoreConfig
from diversity.naswot import correlation_eigenvalues, score_from_eigenvalues
from diversity.scoring import load_all, score_checkpoints
from training.config import TrainConfig
from training.data.datasets import load_split
from training.models.registry import build_model
from training.store.checkpoint import save_checkpoint
from training.store.rundir import RunCheckpoint


def reference_score(model: torch.nn.Module, x: torch.Tensor) -> float:
    import copy

    m = copy.deepcopy(model).train()
    x = x.clone().requires_grad_(True)
    y = m(x)
    y.backward(torch.ones_like(y))
    j = x.grad.reshape(x.shape[0], -1).double().numpy()
    return score_from_eigenvalues(correlation_eigenvalues(j))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet56")
    p.add_argument("--batches", type=int, default=5, help="batches per checkpoint")
    p.add_argument("--checkpoints", type=int, default=3, help="checkpoints per timed repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="2 checkpoints x 5 batches, 3 repeats (about a minute on 2 "
                                                        "cores)")
    a = p.parse_args(argv)
    if a.quick:
        a.checkpoints, a.repeats = 2, 3
    print_load("before")
    tmp = Path(tempfile.mkdtemp())
    items = []
    for i in range(a.checkpoints):
        torch.manual_seed(i)
        model = build_model(a.model, 10)
        path = tmp / f"c{i}.pt"
        save_checkpoint(
            {
                "arch": {"name": a.model, "num_classes": 10, "width": 16},
                "model": model.state_dict(),
                "method": {"name": "scratch"},
                "epoch": 0,
                "config": TrainConfig(model=a.model).to_json(),
            },
            path,
        )
        items.append(RunCheckpoint("scratch", None, path, i))
    loaded = load_all(items)
    cfg = ScoreConfig(batches=a.batches)
    device = torch.device("cpu")
    x = draw_batches(load_split("cifar10", "train"), cfg.batch_size, cfg.batches, cfg.seed)
    def ours() -> None:
        score_checkpoints(loaded, cfg, device, quiet=True)

    def reference() -> None:
        for _it, _ck, model in loaded:
            for b in x:
                reference_score(model, b)

    t = medians(interleaved({"ours": ours, "reference": reference}, a.repeats, warmup=0))
    o, r = t["ours"] / len(loaded), t["reference"] / len(loaded)
    print_load("after")
    print(f"model {a.model}, N = {cfg.batch_size}, {a.batches} batches per checkpoint, {torch.get_num_threads()} "
          "threads",
          file=sys.stderr)
    print(f"reference_seconds_per_checkpoint: {r:.2f}")
    print(f"projected_25x{a.batches}_seconds: {25 * o:.1f}")
    print(f"speedup_vs_reference: {r / o:.2f}")
    print(f"seconds_per_checkpoint: {o:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
