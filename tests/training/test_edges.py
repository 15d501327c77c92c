"""One test per class of bad input: numbers bounded where the flags are declared, allocation
failures, model factories that raise anything, unreadable images, foreign pickles, lock holders named, degenerate
pruning, and intra-op threads divided among processes."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from training.cli.common import memory_error_message, run_cli
from training.config import INT_MAX
from training.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def _run(module: str, argv, capsys):
    """(exit code, stderr, stdout) of ``python -m module argv`` run in this process."""
    import importlib

    main = importlib.import_module(module).main
    try:
        rc = run_cli(main, [str(a) for a in argv])
    except SystemExit as e:  # argparse's own refusals
        rc = e.code
    out = capsys.readouterr()
    return rc, out.err, out.out


def _one_line(rc, err, *needles):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ---------------------------------------------------------------- numbers bounded where the flags are declared

BIG = str(2 ** 64)


@pytest.mark.parametrize("module,argv,needle", [
    ("training.train", ["--seed", BIG, "--out-dir", "{d}/r"], "at most 2**63-1"),
    ("training.train", ["--seeds", "0", BIG, "--out-dir", "{d}/r-s{{seed}}"], "at most 2**63-1"),
    ("training.train", ["--width", "5000", "--out-dir", "{d}/r"], "up to 1,024 (channels of the first stage)"),
    ("training.train", ["--workers", "100000", "--out-dir", "{d}/r"], "worker processes"),
    ("training.train", ["--out-dir", ""], "must not be empty"),
    ("training.prune_schedule", ["--schedule", "finetuned", "--rule", "l1", "--remaining", "0.5", "--seed", BIG,
                                 "--out-dir", "{d}/s"], "at most 2**63-1"),
    ("landscape.plot", ["C.pt", "--out", "{d}/s.npz", "--steps", "20000"], "grid points per axis"),
    ("landscape.plot", ["C.pt", "--out", "{d}/s.npz", "--dir-seed", BIG], "at most 2**63-1"),
    ("landscape.plot", ["C.pt", "--out", "{d}"], "is a directory"),
    ("landscape.plot", ["C.pt", "--out", "{d}/s.npz", "--png", ""], "must not be empty"),
    ("diversity.score", ["C.pt", "--seed", BIG], "at most 2**63-1"),
    ("diversity.score", ["--model", "torchvision:resnet18", "--resize", "100000"], "a size in pixels"),
    ("figures.study", ["--seeds", BIG, "--out-dir", "{d}/st"], "at most 2**63-1"),
    ("figures.study", ["--seeds", "5000", "--out-dir", "{d}/st"], "up to 1,000 (seeds)"),
    ("figures.make", ["--table", "6", "--out", "{d}/f", "--steps", "99999"], "grid points per axis"),
])
def test_numbers_and_paths_are_bounded_at_the_flag(module, argv, needle, tmp_path, capsys):
    rc, err, _ = _run(module, [a.format(d=tmp_path) for a in argv], capsys)
    _one_line(rc, err, needle)
    assert list(tmp_path.iterdir()) == []


def test_libraries_refuse_the_seeds_the_flags_refuse():
    from landscape.config import GridSpec
    from training.config import TrainConfig

    assert TrainConfig(seed=INT_MAX).seed == INT_MAX
    with pytest.raises(UserError, match="2\\*\\*63-1"):
        TrainConfig(seed=INT_MAX + 1)
    with pytest.raises(UserError, match="2\\*\\*63-1"):
        GridSpec(dir_seed=2 ** 64)


def test_an_allocation_larger_than_memory_is_one_line(capsys):
    def cpu_alloc(argv):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 400000000000 bytes. Error code 12 (Cannot allocate memory)")

    def numpy_alloc(argv):
        raise MemoryError("Unable to allocate 72.8 TiB for an array with shape (10000000000000,)")

    for main in (cpu_alloc, numpy_alloc):
        assert run_cli(main, []) == 2
        _one_line(2, capsys.readouterr().err, "out of memory", "allocate")
    assert memory_error_message(RuntimeError("shape mismatch")) is None

    def bug(argv):
        raise RuntimeError("a real bug")

    with pytest.raises(RuntimeError):  # any other RuntimeError keeps its traceback (exit 1)
        run_cli(bug, [])


def test_an_output_folder_that_cannot_be_created_is_one_line(tiny_checkpoint, capsys):
    rc, err, _ = _run("training.prune", [tiny_checkpoint, "--rule", "l1", "--remaining", "0.5", "--out",
                                         "/proc/orthokd-no-such/p.pt"], capsys)
    _one_line(rc, err, "/proc/orthokd-no-such")


# ---------------------------------------------------------------- pictures and VTK heights

def test_tiny_vlevel_is_refused_before_the_surface_is_computed(tiny_checkpoint, tmp_path, capsys):
    rc, err, _ = _run("landscape.plot", [tiny_checkpoint, "--out", tmp_path / "s.npz", "--contour", tmp_path / "c.png",
                                         "--vlevel", "1e-9"], capsys)
    _one_line(rc, err, "--vlevel", "at most 1000 levels")
    assert list(tmp_path.iterdir()) == []


def test_huge_zscale_is_refused_before_writing_vtk_and_keeps_the_surface(tiny_checkpoint, tmp_path, capsys):
    argv = [tiny_checkpoint, "--out", tmp_path / "s.vtk", "--steps", "2", "--max-images", "8", "--device", "cpu",
            "--quiet"]
    rc, err, _ = _run("landscape.plot", [*argv, "--zscale", "1e308"], capsys)
    _one_line(rc, err, "--zscale", "overflows")
    assert not (tmp_path / "s.vtk").exists() and (tmp_path / "s.npz").is_file()  # the computation is kept
    assert _run("landscape.plot", [*argv, "--zscale", "2"], capsys)[0] == 0  # reuses it


# ---------------------------------------------------------------- models and data from outside orthokd

FACTORIES = textwrap.dedent("""
    import sys, urllib.error
    def offline(**kw):
        print('Downloading: "https://download.example/w.pth"', file=sys.stderr)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    def chatty(**kw):
        import torch
        print("note from the factory", file=sys.stderr)
        return torch.nn.Linear(3, 2)
""")


@pytest.mark.parametrize("spec,kwargs,needles", [
    ("torchvision:resnet18", {"num_classes": -1}, ["torchvision:resnet18", "RuntimeError"]),
    ("torchvision:resnet18", {"weights": "DEFAULT", "num_classes": 10}, ["ValueError", "num_classes"]),
    ("edge_factories:offline", {}, ["edge_factories:offline", "URLError", "online"]),
    ("torch.nn:Linear", {"bogus": 1}, ["does not take --model-kwargs", "TypeError"]),
])
def test_any_factory_failure_is_one_user_error_naming_it(spec, kwargs, needles, tmp_path, monkeypatch, capsys):
    from training.external.models import build_model

    (tmp_path / "edge_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError) as e:
        build_model(spec, kwargs)
    assert len(str(e.value).splitlines()) == 1
    for n in needles:
        assert n in str(e.value), (n, str(e.value))
    assert capsys.readouterr().err == ""  # the factory's download chatter is held back
    assert isinstance(build_model("edge_factories:chatty"), torch.nn.Linear)
    assert capsys.readouterr().err == "note from the factory\n"  # and shown when it succeeds


def test_imagefolder_with_a_file_that_is_not_an_image_names_it(tmp_path):
    from PIL import Image

    from training.external.data import load_images, make_transform

    (tmp_path / "cat").mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "cat" / "ok.png")
    (tmp_path / "cat" / "notes.jpg").write_text("not an image\n")
    with pytest.raises(UserError, match="notes.jpg in the image folder is not a readable image"):
        load_images("imagefolder", "train", str(tmp_path), None, make_transform(crop=8))


def test_foreign_pickle_is_our_one_line_without_torchs_warning(tmp_path, capsys):
    import datetime
    import pickle

    bad = tmp_path / "foreign.pt"
    bad.write_bytes(pickle.dumps({"when": datetime.date(2020, 1, 1)}))
    for module, argv in (("training.prune", [bad, "--rule", "l1", "--remaining", "0.5", "--out", tmp_path / "p.pt"]),
                         ("diversity.score", [bad, "--device", "cpu"])):
        rc, err, _ = _run(module, argv, capsys)
        _one_line(rc, err, "foreign.pt")
    from training.external.models import read_state_dict

    with pytest.raises(UserError):
        read_state_dict(bad)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- one process per directory: the holder is named

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from training.store.lock import exclusive_lock
    d = Path(sys.argv[1])
    d.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(d, "x"):
        (d / sys.argv[2]).write_text("partial")
        print("held", flush=True)
        sys.stdin.read()
""")


def _holding(path: Path, stray: str):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), stray], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_the_lock_holder_is_named_before_any_other_verdict(tmp_path, capsys):
    """A run directory another process is filling (only a stray temp file so far) is 'in use by pid ... since ...',
    not 'not an orthokd run directory'; a second prune_schedule on one schedule directory is refused the same way."""
    from training.store.rundir import check_run_dir

    holder = _holding(tmp_path / "run", ".config.json.tmp123")
    try:
        with pytest.raises(UserError, match=f"in use by pid {holder.pid} on .* since .*UTC"):
            check_run_dir(tmp_path / "run", {"a": 1}, overwrite=False)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    with pytest.raises(UserError, match="not an orthokd run directory"):  # released: the usual verdict
        check_run_dir(tmp_path / "run", {"a": 1}, overwrite=False)

    holder = _holding(tmp_path / "sched", "pruned.pt.tmp")
    try:
        rc, err, _ = _run("training.prune_schedule", ["--schedule", "finetuned", "--rule", "l1", "--remaining", "0.5",
                                                      "--model", "resnet8", "--width", "4", "--epochs", "1",
                                                      "--max-train-images", "64", "--out-dir", tmp_path / "sched",
                                                      "--device", "cpu", "--quiet"], capsys)
        _one_line(rc, err, f"schedule directory {tmp_path / 'sched'} is in use by pid {holder.pid}")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert not (tmp_path / "sched" / "initial").exists()


# ---------------------------------------------------------------- degenerate pruning

def test_pruning_that_empties_a_layer_is_refused_without_force(tiny_checkpoint, tmp_path, capsys):
    from training.store.checkpoint import load_checkpoint

    out = tmp_path / "w.pt"
    argv = [tiny_checkpoint, "--rule", "weight", "--remaining", "1e-9", "--out", out]
    rc, err, _ = _run("training.prune", argv, capsys)
    _one_line(rc, err, "without a single weight", "--force")
    assert not out.exists()
    rc, err, stdout = _run("training.prune", [*argv, "--force"], capsys)
    assert rc == 0 and "warning: layers without a single weight" in stdout
    assert "conv1" in load_checkpoint(out)["pruning"]["empty_layers"]
    assert _run("training.prune", [tiny_checkpoint, "--rule", "weight", "--remaining", "0.4", "--out",
                                   tmp_path / "w40.pt"], capsys)[0] == 0  # Table 3's ratio is not degenerate


# ---------------------------------------------------------------- threads divided among processes

def test_threads_are_divided_among_the_processes_that_share_the_cores(monkeypatch):
    from training.runtime import threads

    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert [threads.thread_share(h) for h in (0, 1, 3, 8)] == [8, 4, 2, 1]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four torchrun ranks on this host
    assert threads.thread_share(0) == 2 and threads.thread_share(2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "6")  # the user's per-process choice wins
    assert threads.thread_share(1) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    before = torch.get_num_threads()
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    with threads.divided_threads(helpers=3) as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


def test_runs_record_their_threads(tiny_checkpoint):
    from training.store.checkpoint import load_checkpoint

    assert load_checkpoint(tiny_checkpoint)["provenance"]["threads"].isdigit()
