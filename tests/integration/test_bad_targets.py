"""A target that does not answer: a clear FAIL with a diagnosis, in bounded time, never a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .conftest import REPO


def test_unreachable_pbx_fails_quickly_with_a_diagnosis(tmp_path: Path) -> None:
    profile = tmp_path / "nowhere.yaml"
    profile.write_text("name: nowhere\npbx: {host: 127.0.0.1, port: 1999}\naccounts:\n"
                       "  caller: {username: '1001', password: x}\n  agent1: {username: '2001', password: y}\n")
    home, out = tmp_path / "home", tmp_path / "run"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", "--home", str(home), "run", "scenarios/connect.yaml",
                           "--target", str(profile), "--out", str(out), "-q"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    assert time.monotonic() - t0 < 40
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads((out / "results.json").read_text())["scenarios"][0]["checks"]}
    reg = checks["register:caller"]
    assert reg["verdict"] == "FAIL" and reg["value"] == "no response" and "unreachable" in reg["detail"]
    shown = subprocess.run([sys.executable, "-m", "harness", "--home", str(home), "findings", "list"], cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert "register:caller" in shown.stdout and "never answered" in shown.stdout
    assert not (home / "lab" / "state.json").exists(), "a user's target must not start the lab"
