"""The last lines of a log file, for error messages (bounded read; a missing file is empty)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["log_tail"]


def log_tail(path: Path, lines: int = 12) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
