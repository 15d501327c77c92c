"""The results file of bench/gpu_check.py: one JSON object per line, written, flushed and fsynced the moment a
measurement exists, so a run cut off at any point leaves every finished measurement readable; and the time
budget that decides which sections still fit."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.store.files import atomic_write_text


class Skip(Exception):
    """A section that cannot run here; the message says why."""


def finite(d: Any) -> Any:
    """JSON-safe copy: NaN / inf become None."""
    if isinstance(d, dict):
        return {k: finite(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [finite(v) for v in d]
    return None if isinstance(d, float) and not math.isfinite(d) else d


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a results file (a line cut by a kill mid-write is left out)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class Recorder:
    """Appends records to ``path`` (created; an existing file is never replaced) and keeps the time budget."""

    def __init__(self, path: Path, budget_s: float, quiet: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.budget_s, self.quiet = path, budget_s, quiet
        self.file = open(path, "x", encoding="utf-8")
        self.start = time.monotonic()
        self.records: list[dict[str, Any]] = []

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def write(self, section: str, name: str, status: str, **fields: Any) -> None:
        record = finite({"section": section, "name": name, "status": status,
                         "t_s": round(time.monotonic() - self.start, 2), **fields})
        self.file.write(json.dumps(record, default=str) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.records.append(record)
        if not self.quiet and section != "train_round":
            text = record.get("summary") or record.get("reason") or ""
            print(f"[{record['t_s']:7.1f} s] {section}/{name}: {status} {text}", flush=True)

    def section(self, name: str, estimate_s: float, fn: Callable[[], Any]) -> Any:
        """``fn()`` when about ``estimate_s`` seconds still fit the budget, else a 'skipped' record; a Skip or an
        error becomes a 'skipped' / 'failed' record and the check goes on. Returns fn's result or None."""
        if self.left() < estimate_s:
            self.write(name, "section", "skipped", reason=f"does not fit the time budget: needs about "
                                                           f"{estimate_s:.0f} s, {max(self.left(), 0):.0f} s of "
                                                           f"{self.budget_s:.0f} s left")
            return None
        try:
            return fn()
        except Skip as e:
            self.write(name, "section", "skipped", reason=str(e))
        except Exception as e:  # one broken section must not cost the measurements of the others
            first = (str(e).strip().splitlines() or [""])[0][:300]
            self.write(name, "section", "failed", reason=f"{type(e).__name__}: {first}")
        return None

    def close(self, summary_path: Path, title: str) -> list[str]:
        """Write the Markdown summary (atomically); returns the failed records as 'section/name'."""
        self.file.close()
        lines = [f"# {title}", "", "| section | name | status | result |", "| --- | --- | --- | --- |"]
        for r in self.records:
            if r["section"] != "train_round":
                text = str(r.get("summary") or r.get("reason") or "").replace("|", "/")
                lines.append(f"| {r['section']} | {r['name']} | {r['status']} | {text} |")
        atomic_write_text(summary_path, "\n".join(lines) + "\n")
        print(f"wrote {self.path} and {summary_path}", file=sys.stderr)
        return [f"{r['section']}/{r['name']}" for r in self.records if r["status"] == "failed"]
