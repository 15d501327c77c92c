"""figures.study through submitit: the local executor (subprocesses) gives the sequential study's tables; a re-run
skips every job; Slurm without sbatch and bad values of the executor flags are one error line, exit 2."""
import json
import math
import os
import re

import numpy as np
import pytest

from figures import executor
from figures.executor import gpu_slots, waves
from figures.jobs import Job
from figures.study import main as study_main
from training.cli.common import run_cli
from training.errors import UserError
from training.runtime import threads
from training.runtime.threads import concurrent_environment, thread_share

TABLES = ("table6", "table7_hessian", "table7_flatness", "table8_hessian", "table8_flatness")


def _same(a, b, where):
    """Equal structure; numbers equal to 1e-9 relative (CPU training is deterministic), NaN where NaN."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert (math.isnan(a) and math.isnan(b)) or b == pytest.approx(a, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


def _masked(path, out_dir) -> str:
    """The file's text with the output folder and checkpoint hashes (which include the write time) masked."""
    return re.sub(r"(sha256\W+)[0-9a-f]{12,64}", r"\1SHA", path.read_text().replace(str(out_dir), "OUT"))


@pytest.fixture(scope="module")
def local(micro, tmp_path_factory):
    """The micro study through 2 concurrent local jobs, each given the threads the sequential study's process has
    (OMP_NUM_THREADS set by the user is kept): the thread count changes CPU rounding, and this compares executors at
    equal numerics. The division of threads among concurrent jobs is tested on its own below."""
    out = tmp_path_factory.mktemp("local") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", str(thread_share()))
        assert study_main(["--preset", "micro", "--out-dir", str(out), "--device", "cpu", "--quiet",
                           "--executor", "local", "--max-parallel", "2"]) == 0
    return out


def test_local_executor_gives_the_sequential_tables(micro, local):
    for stem in TABLES:
        seq, loc = (json.loads(_masked(d / "figures" / f"{stem}.json", d)) for d in (micro, local))
        _same(seq["rows"], loc["rows"], stem)
        assert loc["caption"] == seq["caption"], stem
    seq_scores, loc_scores = (json.loads((d / "figures" / "scores.json").read_text()) for d in (micro, local))
    assert [c["batch_scores"] for c in loc_scores["checkpoints"]] == [c["batch_scores"] for c in
                                                                      seq_scores["checkpoints"]]
    for npz in sorted((micro / "surfaces").glob("*.npz")):
        a, b = np.load(npz), np.load(local / "surfaces" / npz.name)
        assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in ("loss", "acc")), npz.name
    # submitit's logs: one stdout/stderr pair per submitted job (teacher, 5 methods, 15 surfaces, 1 summary)
    assert len(list((local / "submitit").glob("*_log.err"))) == 22


def test_local_rerun_skips_everything(local, capfd):
    assert study_main(["--preset", "micro", "--out-dir", str(local), "--device", "cpu", "--executor", "local"]) == 0
    err = capfd.readouterr().err
    assert "0 to run" in err and len(list((local / "submitit").glob("*_log.err"))) == 22  # nothing submitted


def test_slurm_without_sbatch_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("figures.executor.shutil.which", lambda name: None)
    rc = run_cli(study_main, ["--preset", "micro", "--out-dir", str(tmp_path), "--executor", "slurm", "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "sbatch" in err and "--executor local" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flags", [
    ["--executor", "local", "--gpus-per-job", "0"], ["--executor", "local", "--gpus-per-job", "-1"],
    ["--executor", "local", "--gpus-per-job", "nan"], ["--executor", "local", "--max-parallel", "0"],
    ["--executor", "local", "--max-parallel", "2.5"], ["--executor", "local", "--time-limit", "0"],
    ["--executor", "local", "--time-limit", "-3"], ["--executor", "local", "--time-limit", "nan"],
    ["--executor", "slurm", "--partition", " "], ["--executor", "local", "--log-dir", ""],
    ["--executor", "threads"],
])
def test_bad_flag_values_exit_2(flags, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        run_cli(study_main, ["--preset", "micro", "--out-dir", str(tmp_path), "--dry-run", *flags])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error:"), err


@pytest.mark.parametrize("flags, says", [
    (["--max-parallel", "2"], "--executor local"),  # sequential: nothing is submitted
    (["--log-dir", "logs"], "--executor local"),
    (["--executor", "local", "--partition", "gpu"], "--executor slurm"),
    (["--executor", "local", "--gpus-per-job", "1"], "--device cuda"),  # a CPU study has no GPUs to hand out
])
def test_flags_that_do_not_apply_are_refused(flags, says, capsys, tmp_path):
    rc = run_cli(study_main, ["--preset", "micro", "--out-dir", str(tmp_path), "--device", "cpu", "--dry-run", *flags])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and says in err, err


def test_gpu_slots_cut_the_nodes_gpus_into_groups():
    assert gpu_slots(1, None, [0, 1, 2, 3]) == [(0,), (1,), (2,), (3,)]
    assert gpu_slots(2, None, [4, 5, 6, 7, 8]) == [(4, 5), (6, 7)]  # GPU 8 left over: no group of 2
    assert gpu_slots(2, 3, [0, 1, 2, 3]) == [(0, 1), (2, 3), (0, 1)]  # a third job shares the first group
    assert gpu_slots(0, None, []) == [()] and gpu_slots(0, 2, []) == [(), ()]
    with pytest.raises(UserError, match="--gpus-per-job 3"):
        gpu_slots(3, None, [0, 1])


def test_concurrent_jobs_divide_the_hosts_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 16)
    assert concurrent_environment(4) == {"OMP_NUM_THREADS": "4"}
    assert concurrent_environment(32) == {"OMP_NUM_THREADS": "1"}  # never 0
    assert concurrent_environment(1) == {}  # a lone job keeps PyTorch's default (and its rounding)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert concurrent_environment(4) == {}  # the user's choice wins


def test_local_jobs_side_by_side_are_submitted_with_their_share(monkeypatch):
    """_run_local submits each job with OMP_NUM_THREADS = cores // concurrent jobs in its environment (submitit copies
    os.environ at submission) and leaves the driver's environment as it was."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cores", lambda: 8)
    seen = []

    class FakeExecutor:
        def update_parameters(self, **_):
            pass

        def submit(self, fn):
            seen.append(os.environ.get("OMP_NUM_THREADS"))
            return object()

    class FakeWave:
        running: list = []

        def wait_one(self, poll_s):
            job, _ = self.running.pop(0)
            return job

    def job(name):
        return Job("train", name, 1.0, lambda: False, lambda: None)

    executor._run_local(FakeExecutor(), [[job("a")], [job("b")], [job("c")]], [(), ()], FakeWave())
    assert seen == ["4", "4", "4"]
    assert "OMP_NUM_THREADS" not in os.environ
    seen.clear()
    executor._run_local(FakeExecutor(), [[job("a")]], [(), ()], FakeWave())  # one job: nothing to divide
    assert seen == [None]


def test_waves_follow_the_stages_and_join_the_summaries():
    def job(stage, name):
        return Job(stage, name, 1.0, lambda: False, lambda: None)

    todo = [job("teacher", "t"), job("train", "a"), job("train", "b"), job("surface", "s1"), job("surface", "s2"),
            job("score", "table6"), job("tables", "table7"), job("tables", "table8")]
    got = [[[j.name for j in unit] for unit in wave] for wave in waves(todo)]
    assert got == [[["t"]], [["a"], ["b"]], [["s1"], ["s2"]], [["table6", "table7", "table8"]]]
    assert waves(todo[1:3]) == [[[todo[1]], [todo[2]]]]


def test_a_preempted_method_job_is_requeued_and_resumes(tmp_path):
    """A method job given submitit's preemption signal (SIGUSR2, as Slurm sends) after its first epoch is requeued
    (Checkpointable) and resumes from last.pt: each epoch once in metrics.jsonl, the uninterrupted run's weights."""
    import os
    import signal
    import time
    from dataclasses import replace

    import torch

    from figures.analysis.plan import MICRO
    from figures.analysis.stage import training_jobs
    from figures.executor import ExecutorSettings, as_checkpointable, make_executor
    from figures.probe import Rates

    # Packed, as the full study trains: a kill between the two runs' saves must still resume to the same weights.
    packed = replace(MICRO, pack_seeds=True)
    job = next(j for j in training_jobs(packed, tmp_path, Rates(1.0, 1.0), "cpu") if j.name == "scratch-s{0,1}")
    reference = tmp_path / "uninterrupted"
    next(j for j in training_jobs(packed, reference, Rates(1.0, 1.0), "cpu") if j.name == job.name).run()
    sub = make_executor(ExecutorSettings("local", tmp_path / "logs", 0)).submit(as_checkpointable([job]))
    last = tmp_path / "scratch-s0" / "last.pt"
    while not last.is_file():
        assert not sub.done(), sub.paths.stderr.read_text()
        time.sleep(0.02)
    controller = int(sub.job_id)
    task = int(open(f"/proc/{controller}/task/{controller}/children").read().split()[0])
    os.kill(task, signal.SIGUSR2)
    sub.result()
    log = sub.paths.stdout.read_text()  # submitit's own log lines
    assert "this job is preempted" in log and "Requeued job" in log and log.count("Starting with") == 2, log
    for seed in (0, 1):
        run = tmp_path / f"scratch-s{seed}"
        epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2, 3], (seed, epochs)
        ours, ref = (torch.load(d / f"scratch-s{seed}" / "ckpt_e003.pt", map_location="cpu", weights_only=True)["model"]
                     for d in (tmp_path, reference))
        assert all(torch.equal(ours[k], ref[k]) for k in ref), seed


def test_study_passes_training_numerics_and_packing_through():
    from figures.analysis.stage import train_config
    from figures.study import build_parser, study_spec

    spec = study_spec(build_parser().parse_args(["--preset", "micro", "--bf16", "--tf32", "--compile", "--pack"]))
    cfg = train_config(spec, "scratch", 0, None)
    assert (cfg.amp_bf16, cfg.tf32, cfg.compile, spec.pack_seeds) == (True, True, True, True)
    assert study_spec(build_parser().parse_args(["--preset", "micro"])).pack_seeds is False  # CPU preset
    assert study_spec(build_parser().parse_args([])).pack_seeds is True  # the full study packs
    assert study_spec(build_parser().parse_args(["--no-pack"])).pack_seeds is False
