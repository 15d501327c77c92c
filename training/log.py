"""One progress or status line on stderr, the way every package reports."""
from __future__ import annotations

import sys


def log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)
