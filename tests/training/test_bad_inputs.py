"""Bad input to training: one ``error:`` line naming the fix, exit 2, nothing earlier lost.

Flags, damaged checkpoints (flipped byte, NaN weights, truncated last.pt), I/O failures (full disk,
read-only or forbidden location, a file in the way, stdout closed) and a second process on one run directory.
"""
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from training.cli.common import run_cli
from training.config import RuntimeOptions, TrainConfig
from training.engine import fit as fit_module
from training.errors import CheckpointError, UserError
from training.store.checkpoint import load_checkpoint, load_model, save_checkpoint
from training.train import main

TINY = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "128"]
REPO = Path(__file__).resolve().parents[2]


def _run(args, capsys) -> tuple[int, str]:
    """``python -m training.train ARGS`` in this process: (exit code, stderr)."""
    try:
        rc = run_cli(main, [str(a) for a in args])
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    return rc, capsys.readouterr().err


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _one_line(rc: int, err: str, *needles: str) -> None:
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:") and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture
def finished_run(tiny_run_dir, tmp_path) -> Path:
    """A private copy of the finished tiny run (3 epochs)."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run_dir, out)
    return out


FLAG_CASES = [
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-4"], "--batch-size"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--width", "0"], "--width"),
    (["--eval-batch-size", "0"], "--eval-batch-size"),
    (["--epochs", "0"], "--epochs"),
    (["--momentum", "-0.5"], "--momentum"),
    (["--momentum", "nan"], "--momentum"),
    (["--momentum", "1"], "--momentum"),
    (["--weight-decay", "-0.0001"], "--weight-decay"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--lr-milestones", "0"], "--lr-milestones"),
    (["--lr-milestones", "-2"], "--lr-milestones"),
    (["--lr-milestones", "2", "1"], "--lr-milestones"),
    (["--lr-milestones", "2", "2"], "--lr-milestones"),
    (["--lr-gamma", "0"], "--lr-gamma"),
    (["--lr-gamma", "nan"], "--lr-gamma"),
    (["--kd-temperature", "0"], "--kd-temperature"),
    (["--kd-temperature", "-4"], "--kd-temperature"),
    (["--kd-alpha", "1.5"], "--kd-alpha"),
    (["--kd-alpha", "-0.1"], "--kd-alpha"),
    (["--kd-alpha", "nan"], "--kd-alpha"),
    (["--cutmix-prob", "1.01"], "--cutmix-prob"),
    (["--cutmix-prob", "-0.5"], "--cutmix-prob"),
    (["--cutmix-beta", "0"], "--cutmix-beta"),
    (["--feature-beta", "-1"], "--feature-beta"),
    (["--feature-beta", "inf"], "--feature-beta"),
    (["--max-train-images", "0"], "--max-train-images"),
    (["--seed", "-1"], "--seed"),
    (["--save-every", "-1"], "--save-every"),
    (["--stop-after-epoch", "0"], "--stop-after-epoch"),
    (["--shortcut", "option-b"], "--shortcut"),
    (["--normalization", "imagenet"], "--normalization"),
]


@pytest.mark.parametrize("extra,flag", FLAG_CASES, ids=[" ".join(c[0]) for c in FLAG_CASES])
def test_bad_flag_is_one_line_exit_2_and_the_run_is_untouched(finished_run, capsys, extra, flag):
    before = _snapshot(finished_run)
    rc, err = _run([*TINY, "--epochs", "3", "--lr-milestones", "1", "2", "--out-dir", finished_run,
                    "--overwrite", *extra], capsys)
    _one_line(rc, err, flag)
    assert _snapshot(finished_run) == before  # not even --overwrite deleted anything


@pytest.mark.parametrize("field,value", [
    ("batch_size", 0), ("lr", float("nan")), ("lr", -1.0), ("width", 0), ("eval_batch_size", 0), ("epochs", 0),
    ("momentum", float("nan")), ("weight_decay", -1.0), ("lr_milestones", (3, 2)), ("lr_milestones", (0,)),
    ("kd_temperature", 0.0), ("kd_alpha", 1.5), ("cutmix_prob", -0.1), ("max_train_images", 0),
    ("shortcut", "b"), ("normalization", "x"),
])
def test_library_config_refuses_what_the_cli_refuses(field, value):
    with pytest.raises(UserError) as e:
        TrainConfig(**{field: value})
    assert "--" + field.replace("_", "-") in str(e.value) and "\n" not in str(e.value)


def test_runtime_options_refuse_negative_save_every():
    with pytest.raises(UserError, match="--save-every"):
        RuntimeOptions(save_every=-1)


def test_milestones_past_the_last_epoch_are_accepted_and_never_apply(tmp_path):
    """Decision: milestones must increase and be >= 1; those at or past --epochs are allowed (so the recipe's
    defaults work with short runs) and change nothing."""
    assert main([*TINY, "--epochs", "2", "--lr-milestones", "1", "5", "--out-dir", str(tmp_path / "r")]) == 0
    rows = [json.loads(ln) for ln in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [round(r["lr"], 6) for r in rows] == [0.1, 0.01]


# ---------------------------------------------------------------- checkpoints


def _tensor_entry_offsets(path: Path) -> tuple[int, int]:
    """(file offset, size) of the largest tensor's raw bytes inside a torch zip checkpoint (stored, uncompressed)."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        assert info.compress_type == zipfile.ZIP_STORED
    raw = path.read_bytes()
    h = info.header_offset
    name_len, extra_len = int.from_bytes(raw[h + 26:h + 28], "little"), int.from_bytes(raw[h + 28:h + 30], "little")
    return h + 30 + name_len + extra_len, info.file_size


def test_content_sha256_is_the_documented_formula(tiny_checkpoint):
    """Recomputed here with numpy from the docstring's definition, not with training.store.checkpoint."""
    ck = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    tensors = {f"model.{k}": v for k, v in ck["model"].items()}
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    assert ck["content_sha256"] == h.hexdigest()


def test_one_flipped_byte_in_a_tensor_is_refused(tiny_checkpoint, tmp_path):
    bad = tmp_path / "flipped.pt"
    raw = bytearray(tiny_checkpoint.read_bytes())
    start, size = _tensor_entry_offsets(tiny_checkpoint)
    raw[start + size // 2] ^= 0x01  # lowest mantissa bit: still a finite number, just a wrong one
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError) as e:
        load_model(bad)
    msg = str(e.value)
    assert "content_sha256" in msg and str(bad) in msg and "\n" not in msg
    # Without the hash the same file loads "fine": the check is what catches it.
    ck = torch.load(bad, map_location="cpu", weights_only=True)
    del ck["content_sha256"]
    legacy = tmp_path / "legacy.pt"
    torch.save(ck, legacy)
    load_model(legacy)


def test_checkpoint_without_the_hash_loads_unchecked(tiny_checkpoint, tmp_path):
    ck = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    del ck["content_sha256"]
    old = tmp_path / "old_v1.pt"
    torch.save(ck, old)
    model, loaded = load_model(old)
    assert "content_sha256" not in loaded
    for k, v in model.state_dict().items():
        assert torch.equal(v, ck["model"][k])


def _nan_checkpoint(tiny_checkpoint: Path, out: Path, key: str = "blocks.0.conv1.weight") -> Path:
    ck = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    ck["model"][key] = ck["model"][key].clone(memory_format=torch.contiguous_format)
    ck["model"][key].view(-1)[3] = float("nan")
    save_checkpoint({k: v for k, v in ck.items() if k not in ("format", "version", "content_sha256")}, out)
    return out


@pytest.mark.parametrize("key", ["blocks.0.conv1.weight", "bn1.running_var"])
def test_load_model_refuses_non_finite_weights_and_buffers(tiny_checkpoint, tmp_path, key):
    bad = _nan_checkpoint(tiny_checkpoint, tmp_path / "nan.pt", key)
    load_checkpoint(bad)  # the file itself is intact (its hash matches)
    with pytest.raises(CheckpointError) as e:
        load_model(bad)
    assert key in str(e.value) and "non-finite" in str(e.value) and "\n" not in str(e.value)


def test_nan_teacher_is_refused_before_any_training(tiny_checkpoint, tmp_path, capsys):
    bad = _nan_checkpoint(tiny_checkpoint, tmp_path / "nan_teacher.pt")
    rc, err = _run(
        [*TINY, "--method", "label_kd", "--teacher", bad, "--epochs", "1", "--out-dir", tmp_path / "r"], capsys
    )
    _one_line(rc, err, "--teacher", "non-finite")
    assert not (tmp_path / "r").exists()


def test_truncated_last_pt_names_overwrite_and_overwrite_fixes_it(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "2", "--lr-milestones", "1", "--out-dir", out]
    assert _run([*args, "--stop-after-epoch", "1"], capsys)[0] == 0
    last = out / "last.pt"
    last.write_bytes(last.read_bytes()[:3000])
    rc, err = _run(args, capsys)
    _one_line(rc, err, "truncated", "--overwrite")
    assert "re-run training" not in err
    assert _run([*args, "--overwrite"], capsys)[0] == 0
    assert load_checkpoint(last)["epoch"] == 2


# ---------------------------------------------------------------- I/O failures


def _no_temp_files(d: Path) -> bool:
    return not [p for p in d.rglob("*") if ".tmp" in p.name]


@pytest.mark.parametrize("code,verb,needle", [
    (errno.ENOSPC, "write", "free disk space"), (errno.EDQUOT, "write", "quota"), (errno.EROFS, "write", "writable"),
    (errno.EACCES, "access", "may write to"),
])
def test_write_failure_mid_run_is_one_line_and_keeps_the_last_good_epoch(tmp_path, capsys, monkeypatch, code, verb,
                                                                         needle):
    """The disk fills (or turns read-only) while epoch 2's last.pt is written: half a temp file is written,
    then the write fails. The temp file is removed and last.pt still holds epoch 1."""
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "3", "--lr-milestones", "1", "--out-dir", out]
    assert _run([*args, "--stop-after-epoch", "1"], capsys)[0] == 0
    before = (out / "last.pt").read_bytes()
    real = Path.write_bytes

    def failing_write(self, data):
        if self.name.startswith(".last.pt."):
            real(self, bytes(data)[: len(data) // 2])
            raise OSError(code, os.strerror(code), str(self))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write)
    rc, err = _run(args, capsys)
    _one_line(rc, err, f"cannot {verb} {out / 'last.pt'}: {os.strerror(code)}", needle)
    assert (out / "last.pt").read_bytes() == before and _no_temp_files(out)
    monkeypatch.undo()
    assert _run(args, capsys)[0] == 0  # a re-run resumes from epoch 1
    assert load_checkpoint(out / "last.pt")["epoch"] == 3


def test_out_dir_under_a_regular_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    rc, err = _run([*TINY, "--epochs", "1", "--out-dir", tmp_path / "afile" / "run"], capsys)
    _one_line(rc, err, f"cannot access {tmp_path / 'afile' / 'run'}: Not a directory", "choose another output location")
    assert (tmp_path / "afile").read_text() == "mine"


def test_out_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    rc, err = _run([*TINY, "--epochs", "1", "--out-dir", tmp_path / "afile"], capsys)
    _one_line(rc, err, "is a file", "--out-dir")
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0o555 directory anyway")
def test_read_only_directory(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, err = _run([*TINY, "--epochs", "1", "--out-dir", ro / "run"], capsys)
    finally:
        ro.chmod(0o755)
    _one_line(rc, err, "cannot access", "Permission denied", "you may write to")
    assert list(ro.iterdir()) == []


def _closed_stdout_run(argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``argv`` with stdout a pipe whose read end is closed before the child starts (EPIPE on write)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(argv, stdout=w, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(w)


def test_closed_stdout_is_one_line_not_a_traceback():
    script = textwrap.dedent("""
        import sys
        from training.cli.common import run_cli
        def main(argv):
            for i in range(100):
                print("result", i)
            return 0
        sys.exit(run_cli(main))
    """)
    r = _closed_stdout_run([sys.executable, "-c", script])
    _one_line(r.returncode, r.stderr, "stdout was closed")


# ---------------------------------------------------------------- one process per run directory

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from training.store.lock import exclusive_lock
    d = Path(sys.argv[1])
    d.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(d, "run directory"):
        print("held", flush=True)
        sys.stdin.read()
""")


def test_second_process_on_a_run_directory_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, err = _run([*TINY, "--epochs", "1", "--out-dir", out], capsys)
        _one_line(rc, err, f"pid {holder.pid}", "in use")
        assert not (out / "config.json").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert _run([*TINY, "--epochs", "1", "--out-dir", out], capsys)[0] == 0  # released: the run proceeds


def test_lock_is_held_for_the_whole_run(tmp_path, capsys, monkeypatch):
    """While epoch 2 trains, a second training.train on the same directory is refused (today both train)."""
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "2", "--lr-milestones", "1", "--out-dir", str(out)]
    real, seen = fit_module.train_one_epoch, []

    def epoch_with_intruder(*a, **k):
        if a[4] == 2:  # epoch
            seen.append(_run(args, capsys))
        return real(*a, **k)

    monkeypatch.setattr(fit_module, "train_one_epoch", epoch_with_intruder)
    assert run_cli(main, args) == 0
    (rc, err), = seen
    _one_line(rc, err, f"pid {os.getpid()}", str(out))
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
