"""``harness load`` against the real lab: the smoke profile passes; an SLA breach exits non-zero.

Each run is a subprocess (a load run monkey-patches its process with gevent), pointed at the
session's lab through ``--home``: the lab is running, so the command uses it and leaves it up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from harness.lab import LabStack

REPO = Path(__file__).resolve().parents[2]
_BASE = int(os.environ.get("HARNESS_TEST_PORT_BASE", "36000"))


def _harness(home: Path, *args: str, timeout: float = 120) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness", "--home", str(home), "load", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


# The smoke profile's PASS is asserted where the README's command runs it: test_readme_tools.py.


def test_sla_breach_exits_non_zero_with_the_web_ui_on_loopback(lab: LabStack, lab_home: Path,
                                                              tmp_path: Path) -> None:
    profile = tmp_path / "load-breach.yaml"
    profile.write_text(textwrap.dedent("""
        name: load-breach
        shape:
          - hold: {value: 20, duration_s: 4}
        call: {to: load, hold_s: 0.5}
        sla: {setup_p95_ms: 0.001}
        limits: {max_calls: 500, max_duration_s: 10}
    """))
    out, port = tmp_path / "breach", _BASE + 989
    proc = _harness(lab_home, str(profile), "--out", str(out), "--web", "--web-port", str(port))
    page = ""
    deadline = time.monotonic() + 20
    while not page and time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                page = resp.read().decode(errors="replace")
        except OSError:
            time.sleep(0.3)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stdout + stderr
    assert "locust" in page.lower(), "the web UI did not answer on 127.0.0.1 during the run"
    load = json.loads((out / "load.json").read_text())
    (check,) = [c for c in load["checks"] if c["name"] == "setup_p95_ms@step1"]
    assert check["verdict"] == "FAIL" and check["value"] > 0.001 and check["op"] == "<="
    assert json.loads((out / "results.json").read_text())["verdict"] == "FAIL"
    assert "FAIL  setup_p95_ms@step1" in stdout
