"""Run command lines exactly as a user types them: README.md's lines, through bash, in a working directory
the test prepares, with ``.venv/bin`` first on PATH (as after ``. .venv/bin/activate``).

Only the harness's home and the lab's ports come from the environment (``HARNESS_HOME``,
``HARNESS_LAB_*``), so that a test's lab never meets a developer's lab or another test's; every other
``HARNESS_*`` variable of the calling shell is left out. tests/unit/test_readme_commands.py checks that
every command line of README.md appears, as a string, in an integration test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .conftest import REPO, TEST_LAB

__all__ = ["BASE", "BIN", "SESSION_PORTS", "Ports", "sh", "workdir"]

BIN = Path(sys.executable).parent  #: the virtual environment's bin directory: `harness` is installed there
BASE = int(os.environ.get("HARNESS_TEST_PORT_BASE", "36000"))


@dataclass(frozen=True)
class Ports:
    """A lab's ports (TLS is on sip + 1)."""

    sip: int
    ng: int
    rtp_min: int
    rtp_max: int

    def env(self) -> dict[str, str]:
        return {"HARNESS_LAB_SIP_PORT": str(self.sip), "HARNESS_LAB_NG_PORT": str(self.ng),
                "HARNESS_LAB_RTP_MIN": str(self.rtp_min), "HARNESS_LAB_RTP_MAX": str(self.rtp_max)}


#: the session's lab (conftest.TEST_LAB): a command that finds it running uses it
SESSION_PORTS = Ports(TEST_LAB.sip_port, TEST_LAB.ng_port, TEST_LAB.rtp_min, TEST_LAB.rtp_max)


def sh(line: str, *, cwd: Path, home: Path, ports: Ports, env: dict[str, str] | None = None,
       timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``line`` run by bash in ``cwd``, as typed (globs and quotes as the shell has them)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    full = {**base, "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '/usr/bin:/bin')}", "VIRTUAL_ENV": str(BIN.parent),
            "HARNESS_HOME": str(home), **ports.env(), **(env or {})}
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


def workdir(path: Path) -> Path:
    """A directory laid out like a checkout for the README's relative paths: ``scenarios/`` and
    ``audio_fixtures/`` are the project's, linked (so never run ``harness fixtures build`` in it: it would
    write into the project's fixtures); ``reports/`` and everything else is the test's."""
    path.mkdir(parents=True, exist_ok=True)
    for name in ("scenarios", "audio_fixtures"):
        (path / name).symlink_to(REPO / name, target_is_directory=True)
    return path
