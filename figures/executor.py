"""The study's jobs through submitit (docs/reference.md "Training runs and checkpoints"): ``local`` = subprocesses on
this node (submitit's LocalExecutor),
``slurm`` = sbatch job arrays (submitit.AutoExecutor). No launcher of our own: submitit starts the processes, writes
the logs, requeues.

Order: stages run one after another, the driver waiting on every job of a stage (``job.result()``) before it
submits the next; Slurm dependency strings are not used, so local and Slurm follow one path and a failed job stops
the study before anything that needs it is queued. Stages: the teacher; one job per method (all its seeds); one job
per surface; then Table 6 and Tables 7-8 together in one job. Jobs of a stage run at once, at most ``max_parallel``:
on Slurm as one job array with that array parallelism; locally each concurrent job gets its own group of
``gpus_per_job`` GPUs (submitit's ``visible_gpus``), and K jobs side by side share the node's CPU cores
(``OMP_NUM_THREADS`` = cores // K each, unless the user set it). Every job is a
``submitit.helpers.FunctionSequence``, which is
``Checkpointable``: on a timeout or preemption submitit requeues it and it resumes, training from last.pt, surfaces
from their store, the summary from its first unfinished table.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from figures.jobs import Job, Runner
from training.errors import UserError
from training.runtime.device import resolve_device
from training.runtime.optional import require
from training.runtime.threads import concurrent_environment

EXECUTORS = ("sequential", "local", "slurm")
SUMMARY_STAGES = ("score", "tables")  # minutes next to training: one job runs them all, in order
TIME_LIMIT_MIN = 1440  # default per-job limit (minutes); at the limit the job is requeued and resumes
MAX_REQUEUES = 50  # timeouts before submitit gives a job up (its default, 3, is too few for short limits)
POLL_S = {"local": 0.5, "slurm": 30.0}  # how often the driver looks at its jobs (Slurm: sacct is shared and slow)


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str  # "local" (subprocesses on this node) or "slurm"
    folder: Path  # submitit's pickles and per-job stdout/stderr logs
    gpus_per_job: int = 1  # GPUs each job sees; 0 for a CPU study
    partition: str | None = None  # Slurm partition; None = the cluster's default
    time_limit_min: int = TIME_LIMIT_MIN  # per job, minutes
    max_parallel: int | None = None  # jobs at once; None: local = one per GPU group (1 on CPU), Slurm = no cap
    local_slots: tuple[tuple[int, ...], ...] = ((),)  # local: the GPUs of each concurrent job (gpu_slots)


def executor_settings(kind: str, out_dir: Path, device: torch.device, log_dir: str | None = None,
                      gpus_per_job: int | None = None, partition: str | None = None, time_limit_min: int | None = None,
                      max_parallel: int | None = None) -> ExecutorSettings | None:
    """The settings for ``kind`` (None for ``sequential``, which runs the jobs in this process), logs in ``log_dir``
    (default OUT_DIR/submitit); every option that does not apply to ``kind`` or ``device`` is refused with one
    UserError line naming the fix."""
    if kind not in EXECUTORS:
        raise UserError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    given = {"--gpus-per-job": gpus_per_job, "--partition": partition, "--time-limit": time_limit_min,
             "--max-parallel": max_parallel, "--log-dir": log_dir}
    if kind == "sequential":
        extra = [flag for flag, v in given.items() if v is not None]
        if extra:
            raise UserError(f"{', '.join(extra)} only apply to submitted jobs; add --executor local (subprocesses on "
                            "this node) or --executor slurm")
        return None
    if kind == "local" and partition is not None:
        raise UserError("--partition is a Slurm option; use it with --executor slurm")
    if kind == "slurm" and (shutil.which("sbatch") is None or shutil.which("srun") is None):
        raise UserError("--executor slurm needs Slurm's sbatch and srun on PATH (run it on the cluster's login node); "
                        "use --executor local to run the jobs as subprocesses on this machine")
    if device.type == "cpu" and gpus_per_job is not None:
        raise UserError("--gpus-per-job needs a GPU study; drop it or use --device cuda")
    gpus = 0 if device.type == "cpu" else (gpus_per_job or 1)
    folder = Path(log_dir) if log_dir else Path(out_dir) / "submitit"
    slots = tuple(gpu_slots(gpus, max_parallel, visible_gpu_ids() if gpus else [])) if kind == "local" else ((),)
    return ExecutorSettings(kind, folder, gpus, partition, time_limit_min or TIME_LIMIT_MIN, max_parallel, slots)


def job_device(name: str, kind: str) -> torch.device:
    """The device the study's jobs use. In this process (sequential) ``resolve_device(name)``; in submitted jobs the
    device type only, as each job sees just its own GPUs (cuda:0, ...); on Slurm cuda unless cpu is asked for, since
    the machine that submits often has no GPU."""
    if kind == "slurm":
        return torch.device("cpu" if name == "cpu" else "cuda")
    device = resolve_device(name)
    return device if kind == "sequential" else torch.device(device.type)


def visible_gpu_ids() -> list[int]:
    """This node's GPUs as the numbers CUDA_VISIBLE_DEVICES takes (the driver's own CUDA_VISIBLE_DEVICES honoured)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(torch.cuda.device_count()))
    try:
        return [int(x) for x in env.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"CUDA_VISIBLE_DEVICES={env} names GPUs by UUID; give their indices (e.g. 0,1) for "
                        "--executor local") from None


def gpu_slots(gpus_per_job: int, max_parallel: int | None, ids: list[int]) -> list[tuple[int, ...]]:
    """The GPUs of each concurrent local job: ``ids`` cut into consecutive groups of ``gpus_per_job``; slot k uses
    group k mod #groups (so max_parallel above #groups shares GPUs); one slot per group by default; () on CPU."""
    if gpus_per_job == 0:
        return [()] * (max_parallel or 1)
    groups = [tuple(ids[i:i + gpus_per_job]) for i in range(0, len(ids) - gpus_per_job + 1, gpus_per_job)]
    if not groups:
        raise UserError(f"--gpus-per-job {gpus_per_job} but this node shows {len(ids)} GPU(s); ask for at most "
                        f"{len(ids)}" if ids else "--executor local with a GPU study but no GPU is visible; "
                        "use --device cpu")
    return [groups[k % len(groups)] for k in range(max_parallel or len(groups))]


def waves(todo: list[Job]) -> list[list[list[Job]]]:
    """The submission plan: consecutive jobs of one stage form a wave, one submitted job each; the summary stages
    (SUMMARY_STAGES) form one wave of one submitted job that runs them in order."""
    out: list[list[list[Job]]] = []
    prev = None
    for j in todo:
        key = "summary" if j.stage in SUMMARY_STAGES else j.stage
        if key != prev:
            out.append([])
            prev = key
        if key == "summary" and out[-1]:
            out[-1][0].append(j)
        else:
            out[-1].append([j])
    return out


def make_executor(s: ExecutorSettings):
    """A submitit executor for ``s``. Local: ``submitit.LocalExecutor`` itself, because AutoExecutor (submitit 1.5)
    refuses ``local_visible_gpus``."""
    submitit = require("submitit", "submitit", f"--executor {s.kind}")
    if s.kind == "local":
        ex = submitit.LocalExecutor(s.folder, max_num_timeout=MAX_REQUEUES)
        ex.update_parameters(timeout_min=s.time_limit_min)
        return ex
    ex = submitit.AutoExecutor(s.folder, cluster="slurm", slurm_max_num_timeout=MAX_REQUEUES)
    ex.update_parameters(name="orthokd-study", timeout_min=s.time_limit_min, gpus_per_node=s.gpus_per_job,
                         tasks_per_node=1, slurm_partition=s.partition, slurm_array_parallelism=s.max_parallel)
    return ex


def as_checkpointable(unit: list[Job]):
    """The runs of ``unit`` as one submitit FunctionSequence: Checkpointable, so a requeued job redoes only the
    runs that had not returned (each of which resumes by itself)."""
    seq = require("submitit.helpers", "submitit", "--executor local/slurm").FunctionSequence()
    for j in unit:
        seq.add(j.run)
    return seq


def remote_call(s: ExecutorSettings, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` as one submitted job of at most 10 minutes (the throughput probe on a Slurm GPU node, whose
    speed the submitting machine cannot measure); waits for its result."""
    ex = make_executor(s)
    ex.update_parameters(timeout_min=10)
    return ex.submit(fn, *args).result()


class _Wave:
    """The submitted jobs of one wave: results collected as they finish, failures named, Ctrl-C cancels the rest."""

    def __init__(self, finished: Callable[[Job], None]):
        self.finished = finished
        self.running: list[tuple[Any, list[Job]]] = []
        self.failed: list[str] = []

    def wait_one(self, poll_s: float) -> Any:
        helpers = require("submitit.helpers", "submitit", "--executor local/slurm")
        job = next(helpers.as_completed([j for j, _ in self.running], poll_frequency=poll_s))
        unit = next(u for j, u in self.running if j is job)
        self.running = [(j, u) for j, u in self.running if j is not job]
        try:
            job.result()
        except Exception:  # submitit's FailedJobError / UncompletedJobError carry the job's whole traceback
            self.failed.append(f"{'+'.join(j.name for j in unit)} (log {job.paths.stderr})")
        else:
            for j in unit:
                self.finished(j)
        return job

    def cancel(self) -> None:
        for job, _ in self.running:
            job.cancel(check=False)

    def check(self) -> None:
        if self.failed:
            raise UserError(f"{len(self.failed)} job(s) failed: {'; '.join(self.failed)}; fix the cause and re-run "
                            "the same command, which resumes")


def submitit_runner(s: ExecutorSettings) -> Runner:
    """A figures.jobs runner that submits the jobs through submitit, wave after wave (see the module docstring)."""

    def run(todo: list[Job], finished: Callable[[Job], None]) -> None:
        ex = make_executor(s)
        for units in waves(todo):
            wave = _Wave(finished)
            try:
                if s.kind == "slurm":
                    with ex.batch():
                        wave.running = [(ex.submit(as_checkpointable(u)), u) for u in units]
                    while wave.running:
                        wave.wait_one(POLL_S[s.kind])
                else:
                    _run_local(ex, units, list(s.local_slots), wave)
            except BaseException:
                wave.cancel()  # Ctrl-C or a driver error stops this study's jobs; a re-run resumes them
                raise
            wave.check()

    return run


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``variables`` set for the block (submitit's LocalExecutor copies it into each job)."""
    before = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_local(ex, units: list[list[Job]], slots: list[tuple[int, ...]], wave: _Wave) -> None:
    """Keep one job per free GPU slot running until every unit has run; jobs that run side by side divide this
    node's CPU threads among them (training.runtime.threads.concurrent_environment)."""
    queue, free, slot_of = list(units), list(slots), {}
    threads = concurrent_environment(min(len(slots), len(units)))
    while queue or wave.running:
        while queue and free:
            gpus = free.pop(0)
            ex.update_parameters(gpus_per_node=len(gpus), visible_gpus=gpus)
            with _environment(threads):
                job = ex.submit(as_checkpointable(queue[0]))
            wave.running.append((job, queue.pop(0)))
            slot_of[id(job)] = gpus
        free.append(slot_of.pop(id(wave.wait_one(POLL_S["local"]))))
