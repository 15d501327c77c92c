"""Bad input for every flag of every command, tallied by how each run ended.

For each command (training.train, training.prune, training.prune_schedule, landscape.plot, diversity.score,
figures.study, figures.make) it starts from a small base command line that works on the CPU in seconds, then
replaces or adds one flag at a time with zero, negative, NaN, inf, huge, malformed and (for two-number flags)
reversed values, and every path with a foreign pickle, a truncated checkpoint, an empty file, a text file, a
directory and a missing path. Each case runs in this process through the command's ``run_cli`` (stdout and stderr
captured, a per-case time limit, an address-space limit so an oversized allocation fails instead of exhausting
the host) and ends as one of:

- ``exit 0``; ``exit 2, one line`` (exactly one ``error:`` line on stderr, the contract of docs/reference.md "Errors and
outputs");
- ``exit 2, noisy`` (more than that line on stderr, e.g. a library warning first);
- ``traceback`` (an exception escaped); ``time limit`` (still working when the limit came: the value was taken).

    python bench/edge_fuzz.py [--commands training.prune ...] [--limit-s 30] [--json out.json]

The last line is ``tracebacks: N``. Parameters (argparse types, nargs, choices) are read from each command's
``build_parser()``, so a new flag is fuzzed without editing this file.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import io
import json
import os
import pickle
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COMMANDS = ("training.train", "training.prune", "training.prune_schedule", "landscape.plot", "diversity.score",
            "figures.study", "figures.make")
NUMBERS = ("0", "-1", "nan", "inf", "-inf", "1e30", str(2 ** 70), "abc", "")
STRINGS = ("", "abc", "-", "../..")
INPUTS = ("foreign", "truncated", "empty", "text", "dir", "missing")
OUTPUTS = ("dir", "under_file", "unwritable", "empty_name")
# Parameters that name files or folders read (INPUTS) or written (OUTPUTS).
INPUT_DESTS = {"checkpoint", "checkpoints", "teacher", "init", "weights", "directions", "interpolate", "trajectory",
               "data_dir", "runs_dir"}
OUTPUT_DESTS = {"out", "out_dir", "png", "contour", "figures_dir", "log_dir"}


class CaseTimeout(BaseException):
    """Raised by the alarm: the command was still working (BaseException, so no ``except Exception`` hides it)."""


def make_fixtures(tmp: Path) -> dict[str, str]:
    """A tiny trained checkpoint and its run directory, and one file of every bad kind."""
    from training.cli.common import run_cli
    from training.train import main

    run = tmp / "fixture-run"
    rc = run_cli(main, ["--model", "resnet8", "--width", "4", "--epochs", "1", "--lr-milestones", "--max-train-images",
                        "64", "--batch-size", "32", "--out-dir", str(run), "--device", "cpu", "--quiet"])
    assert rc == 0, "the fixture run failed"
    ckpt = run / "last.pt"
    data = ckpt.read_bytes()
    files = {"ckpt": str(ckpt), "run": str(run), "foreign": tmp / "foreign.pt", "truncated": tmp / "truncated.pt",
             "empty": tmp / "empty.pt", "text": tmp / "text.pt", "dir": tmp / "a_dir", "missing": tmp / "missing.pt",
             "file": tmp / "a_file"}
    files["foreign"].write_bytes(pickle.dumps({"when": datetime.date(2020, 1, 1)}))  # a pickle of a foreign class
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a checkpoint\n")
    files["dir"].mkdir()
    files["file"].write_text("x")
    return {k: str(v) for k, v in files.items()}


def base_commands(fx: dict[str, str]) -> dict[str, list[str]]:
    """Command lines that succeed (or refuse cleanly) in seconds on a CPU; {out} is a fresh folder per case."""
    tiny = ["--model", "resnet8", "--width", "4", "--epochs", "1", "--lr-milestones", "--max-train-images", "64",
            "--batch-size", "32", "--device", "cpu", "--quiet"]
    return {
        "training.train": [*tiny, "--out-dir", "{out}/run"],
        "training.prune": [fx["ckpt"], "--rule", "l1", "--remaining", "0.5", "--out", "{out}/p.pt"],
        "training.prune_schedule": [
            "--schedule", "finetuned", "--rule", "l1", "--remaining", "0.5", *tiny, "--finetune-epochs", "1",
            "--out-dir", "{out}/sched",
        ],
        "landscape.plot": [
            fx["ckpt"], "--out", "{out}/s.npz", "--steps", "2", "--max-images", "16", "--device", "cpu", "--quiet",
        ],
        "diversity.score": [
            fx["ckpt"], fx["ckpt"], "--batch-size", "8", "--batches", "1", "--device", "cpu", "--quiet",
        ],
        "figures.study": ["--preset", "micro", "--dry-run", "--out-dir", "{out}/study", "--device", "cpu", "--quiet"],
        "figures.make": [
            "--table", "1", "--runs-dir", "{out}/runs", "--out", "{out}/figs", "--preset", "micro", "--device", "cpu",
            "--quiet",
        ],
    }


# Flags that only act beside another: the extra arguments that make them act.
CONTEXT = {
    ("landscape.plot", "vlevel"): ["--contour", "{out}/c.png"],
    ("landscape.plot", "vmin"): ["--contour", "{out}/c.png"],
    ("landscape.plot", "vmax"): ["--contour", "{out}/c.png"],
    ("landscape.plot", "zscale"): ["--out", "{out}/s.vtk"],
    ("landscape.plot", "zmax"): ["--out", "{out}/s.vtk"],
    ("landscape.plot", "sharpness_images"): ["--sharpness"],
    ("training.train", "kd_alpha"): ["--method", "label_kd", "--teacher", "{ckpt}"],
    ("training.train", "kd_temperature"): ["--method", "label_kd", "--teacher", "{ckpt}"],
    ("training.train", "feature_beta"): ["--method", "feature_kd", "--teacher", "{ckpt}"],
    ("training.train", "cutmix_prob"): ["--method", "cutmix"],
    ("training.train", "cutmix_beta"): ["--method", "cutmix"],
    ("training.train", "teacher"): ["--method", "label_kd"],
    ("training.train", "workers"): ["--augment", "autoaugment"],
    ("training.train", "seeds"): ["--out-dir", "{out}/run-s{seed}"],
    ("diversity.score", "pairwise_images"): ["--pairwise"],
}
MODEL_CONTEXT = ["--model", "torchvision:resnet18", "--model-kwargs", '{"num_classes": 10}']


def values_for(action: argparse.Action, fx: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(label, argument values) of the bad values tried for ``action``."""
    n = action.nargs if isinstance(action.nargs, int) else 1
    if action.dest in INPUT_DESTS:
        return [(k, [fx[k]] * n) for k in INPUTS]
    if action.dest in OUTPUT_DESTS:
        return [("dir", [fx["dir"]]), ("under_file", [fx["file"] + "/x"]), ("unwritable", ["/proc/orthokd/x"]),
                ("empty_name", [""])][: 4 if n == 1 else 0]
    if action.choices is not None:
        return [("unknown", ["bogus"] * n), ("empty", [""] * n)]
    if action.type is None:  # a free string
        return [(repr(v), [v] * n) for v in STRINGS]
    out = [(v or "''", [v] * n) for v in NUMBERS]
    if n == 2:
        out.append(("reversed", ["1", "0"]))
    if action.nargs in ("+", "*"):
        out.append(("many", ["1"] * 50))
    return out


def with_flag(base: list[str], action: argparse.Action, values: list[str]) -> list[str]:
    """``base`` with ``action`` set to ``values`` (a positional replaced, an option replaced or appended)."""
    if not action.option_strings:  # positional: the base's first path(s)
        nconsumed = 2 if action.nargs in ("*", "+") and base[1:2] == base[:1] else 1
        return [*values, *base[nconsumed:]]
    flag = action.option_strings[-1]
    argv = list(base)
    if flag in argv:
        i = argv.index(flag) + 1
        while i < len(argv) and not argv[i].startswith("--"):
            argv.pop(i)
        argv[i:i] = values
        return argv
    return argv + [flag, *values]


def _alarm(signum, frame) -> None:
    raise CaseTimeout()


def run_case(module, argv: list[str], limit_s: float) -> tuple[str, str]:
    """(outcome, detail) of one command line run in this process."""
    from training.cli.common import run_cli

    err, out = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                rc = run_cli(module.main, argv)
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else 2
    except CaseTimeout:
        return "time limit", ""
    except BaseException as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return (
            "traceback",
            f"{type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''} @ {tb[-2].strip()[:150]}",
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if rc == 0:
        return "exit 0", ""
    if rc == 2 and len(lines) == 1 and lines[0].startswith("error:"):
        return "exit 2, one line", lines[0][:200]
    return (f"exit {rc}, noisy" if rc == 2 else f"exit {rc}"), " | ".join(lines)[:300]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    p.add_argument("--limit-s", type=float, default=30.0, help="seconds per case before it counts as 'time limit'")
    p.add_argument("--memory-gib", type=float, default=6.0, help="address-space limit of this process")
    p.add_argument("--json", default=None, help="also write every case and its outcome here")
    p.add_argument("--flags", nargs="+", default=None, help="only these parameters (dest names)")
    a = p.parse_args()
    limit = int(a.memory_gib * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="edge_fuzz-"))
    os.chdir(tmp)  # a case that writes to a relative or empty path writes here, not into the caller's folder
    try:
        fx = make_fixtures(tmp)
        bases = base_commands(fx)
        cases, tally = [], Counter()
        for name in a.commands:
            module = importlib.import_module(name)
            actions = [
                x
                for x in module.build_parser()._actions
                if x.dest != "help"
                and not isinstance(x, (argparse._StoreTrueAction, argparse.BooleanOptionalAction))
                and (a.flags is None or x.dest in a.flags)
            ]
            plan = [("(base)", "", [])] + [(x.dest, label, with_flag(
                bases[name] + [v.replace("{ckpt}", fx["ckpt"]) for v in CONTEXT.get((name, x.dest), [])]
                + (MODEL_CONTEXT if x.dest in ("model_kwargs", "resize", "crop", "mean", "std", "weights", "group")
                   else []), x, vals)) for x in actions for label, vals in values_for(x, fx)]
            for dest, label, argv in plan:
                argv = argv or bases[name]
                case_dir = Path(tempfile.mkdtemp(dir=tmp))
                argv = [s.replace("{out}", str(case_dir)) for s in argv]
                t0 = time.perf_counter()
                outcome, detail = run_case(module, argv, a.limit_s)
                shutil.rmtree(case_dir, ignore_errors=True)
                tally[(name, outcome)] += 1
                cases.append({"command": name, "flag": dest, "value": label, "outcome": outcome, "detail": detail,
                              "seconds": round(time.perf_counter() - t0, 2)})
                print(f"{name:24s} {dest:18s} {label:12s} {outcome:18s} {detail[:140]}", flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(cases, indent=1) + "\n")
        print("\ncommand                  " + " | ".join(sorted({o for _, o in tally})))
        for name in a.commands:
            print(f"{name:24s} " + " | ".join(f"{tally[(name, o)]}" for o in sorted({o for _, o in tally})))
        total = Counter(c["outcome"] for c in cases)
        print(f"cases: {len(cases)}; " + "; ".join(f"{o}: {n}" for o, n in sorted(total.items())))
        print(f"tracebacks: {total['traceback']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
