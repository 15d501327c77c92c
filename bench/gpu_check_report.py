"""The study ETA from bench/gpu_check.py's measurements, and its JSON + Markdown report."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from gpu_check_lib import FULL_EPOCH, Skip, measure, need
from training.checkpoint import atomic_write_text

TRAININGS = 26  # the Tables 6-8 study: 1 teacher + 5 methods x 5 seeds
EPOCHS = 160  # the paper's recipe
SURFACES = 15  # 5 methods x 3 milestone checkpoints (Tables 7-8)
SCORES = 25  # 5 methods x 5 runs (Table 6)
SECTIONS = ("train_speed", "packed", "accuracy", "surface", "naswot", "eta")


def eta_section(res: dict, pack: int) -> dict[str, dict]:
    """Hours of the study on this GPU, each from measured seconds. Per epoch: s = extrapolated training seconds,
    o = evaluation / checkpoint / start-up overhead per epoch of one run (the fp32 accuracy run, else 0).
    single: TRAININGS x EPOCHS x (s + o); packed: ceil(TRAININGS / pack) x EPOCHS x (s_packed + pack x o);
    surfaces: SURFACES x t_51x51; NASWOT: SCORES x t_checkpoint; total: fastest training + surfaces + NASWOT."""
    eta: dict[str, dict] = {}
    try:
        o, o_note = need(res["accuracy"], "fp32", "overhead_per_epoch_s"), "measured by the fp32 accuracy run"
    except Skip:
        o, o_note = 0.0, "not measured (accuracy run missing): evaluation time not included"

    def training(s: float, runs: int, per_run: int, label: str) -> dict[str, Any]:
        hours = runs * EPOCHS * (s + per_run * o) / 3600
        return {"hours": hours, "seconds_per_epoch": s, "overhead_per_epoch_s": o, "overhead": o_note,
                "summary": f"{hours:.1f} h: {runs} x {EPOCHS} epochs x ({s:.2f} s + {per_run} x {o:.2f} s overhead) ({label})"}

    for name in res["train_speed"]:
        measure(eta, f"train_{name}", lambda n=name: training(
            need(res["train_speed"], n, "seconds_per_epoch_50k"), TRAININGS, 1, f"{TRAININGS} single {n} runs"))
    packs = math.ceil(TRAININGS / pack)
    measure(eta, "train_packed_x5", lambda: training(
        need(res["packed"], "packed_x5", "seconds_per_epoch_50k"), packs, pack,
        f"{TRAININGS} runs in {packs} packs of <= {pack}"))

    def hours_of(section: str, name: str, key: str, count: int, what: str):
        def fn():
            h = count * need(res[section], name, key) / 3600
            return {"hours": h, "summary": f"{h:.2f} h: {count} {what}"}
        return fn

    measure(eta, "surfaces", hours_of("surface", "surface_51x51", "seconds_51x51", SURFACES, "51x51 surfaces on 50k images"))
    measure(eta, "naswot", hours_of("naswot", "per_checkpoint", "seconds_per_checkpoint", SCORES, "NASWOT checkpoint scores"))

    def total():
        options = {k: v["hours"] for k, v in eta.items() if k.startswith("train_") and v["status"] == "ok"}
        if not options:
            raise Skip("needs at least one training timing")
        best = min(options, key=options.get)
        h = options[best] + need(eta, "surfaces", "hours") + need(eta, "naswot", "hours")
        return {"hours": h, "training": best, "summary": f"{h:.1f} h = {best} + surfaces + NASWOT"}

    measure(eta, "total", total)
    return eta


def finite_numbers(d: Any) -> Any:
    """JSON-safe copy: NaN / inf become None (the Markdown still shows the summary line)."""
    if isinstance(d, dict):
        return {k: finite_numbers(v) for k, v in d.items()}
    if isinstance(d, list):
        return [finite_numbers(v) for v in d]
    return None if isinstance(d, float) and not math.isfinite(d) else d


def markdown(env: dict, res: dict) -> str:
    lines = [f"# GPU check: {env['gpu'] or env['device']}" + (" (smoke: tiny CPU settings)" if env["smoke"] else ""), "",
             f"- command: `{env['command']}`", f"- torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}",
             f"- device: {env['device']}, torch.cuda.get_device_name(): {env['gpu']}",
             f"- git commit {env['git_commit']}, {env['utc_time']}",
             "- flags found in --help: " + ", ".join(f"{m} {f}: {'yes' if v else 'no'}"
                                                      for m, fl in res["flags"].items() for f, v in fl.items()),
             f"- training seconds are timed on a few epochs of a subset and extrapolated to a {FULL_EPOCH}-image "
             "epoch; the 51x51 surface time is extrapolated from smaller grids unless the timed grid is 51x51", ""]
    for section in SECTIONS:
        lines += [f"## {section}", "", "| measurement | status | result |", "| --- | --- | --- |"]
        for name, r in res[section].items():
            text = r.get("summary") if r["status"] == "ok" else r["reason"]
            lines.append(f"| {name} | {r['status']} | {str(text).replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def write_report(out: Path, env: dict, res: dict) -> list[str]:
    """Write OUT/gpu_check.json and OUT/gpu_check.md, print the Markdown; returns the failed measurements."""
    failed = [f"{s}/{n}" for s in SECTIONS for n, r in res[s].items() if r["status"] == "failed"]
    out.mkdir(parents=True, exist_ok=True)
    doc = {"environment": env, "flags": res["flags"], **{s: res[s] for s in SECTIONS}, "failed": failed}
    atomic_write_text(out / "gpu_check.json", json.dumps(finite_numbers(doc), indent=2) + "\n")
    md = markdown(env, res)
    atomic_write_text(out / "gpu_check.md", md + "\n")
    print(md)
    print(f"wrote {out / 'gpu_check.json'}, {out / 'gpu_check.md'}, {out / 'logs'}", file=sys.stderr)
    return failed
