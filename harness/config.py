"""Settings shared by every command: CLI option > HARNESS_* environment variable > default.

``HARNESS_HOME`` is the project's data directory (lab state, logs, findings); it defaults to
``.harness`` under the current directory so that a checkout keeps its own state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    home: Path

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        raw = home or os.environ.get("HARNESS_HOME") or ".harness"
        return cls(home=Path(raw).expanduser().resolve())

    @property
    def lab_dir(self) -> Path:
        return self.home / "lab"
