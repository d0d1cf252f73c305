"""Settings shared by every command: CLI option > HARNESS_* environment variable > default.

``HARNESS_HOME`` is the project's data directory (lab state, logs, findings); it defaults to
``.harness`` under the current directory so that a checkout keeps its own state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]


MEDIA_PRIORITIES = ("realtime", "normal")


@dataclass(frozen=True)
class Settings:
    home: Path
    #: ``HARNESS_MEDIA_PRIORITY``: the parties' and the lab's media processes run under SCHED_RR where
    #: permitted (``realtime``, the default), or as ordinary processes (``normal``); harness.sip.realtime
    media_priority: str = "realtime"

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        from harness.contracts.errors import InputError

        raw = home or os.environ.get("HARNESS_HOME") or ".harness"
        prio = os.environ.get("HARNESS_MEDIA_PRIORITY", "").strip().lower() or "realtime"
        if prio not in MEDIA_PRIORITIES:
            raise InputError(f"HARNESS_MEDIA_PRIORITY={prio!r}: must be one of {', '.join(MEDIA_PRIORITIES)}")
        return cls(home=Path(raw).expanduser().resolve(), media_priority=prio)

    @property
    def lab_dir(self) -> Path:
        return self.home / "lab"
