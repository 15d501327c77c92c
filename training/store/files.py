"""Atomic file writes, strict JSON, sha256 of files and provenance records: the file plumbing every package shares."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch


def _process_umask() -> int:
    """The process umask, read when a file is written (os has no getter: set it and put it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write, keep_suffix: bool = False) -> None:
    """Call ``write(tmp_path)`` on a temp file in the destination directory, then ``os.replace``.

    A crash at any moment leaves either the old file or the new one, never a truncated mix.
    ``keep_suffix`` ends the temp name with the destination's suffix, for writers that pick the
    format from it (VTK, matplotlib)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{path.suffix}" if keep_suffix else ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_process_umask())  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno and e.filename in (None, tmp):  # name the destination, not the temp
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def strict_json(doc: Any, **dumps_kwargs: Any) -> str:
    """``json.dumps(doc)`` as strict JSON (RFC 8259, which JavaScript's JSON.parse and other strict parsers take):
    every NaN or infinite float, at any depth, becomes null."""
    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(doc), allow_nan=False, **dumps_kwargs)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def provenance(device: torch.device | str) -> dict[str, str]:
    """git commit of this source tree, torch version, device, intra-op CPU threads (training.runtime.threads) and UTC
    time."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "git_commit": commit or "unknown",
        "torch": str(torch.__version__),
        "device": str(device),
        "threads": str(torch.get_num_threads()),
        "utc_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
