"""SIGTERM or SIGINT in the middle of a run: results so far are kept, every child is stopped (the
parties and the lab the run started), the exit code is 130, and nothing is left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, write_scenario

_BASE = int(os.environ.get("HARNESS_TEST_PORT_BASE", "36000")) + 2000


def children_of(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_keeps_results_and_leaves_no_process(tmp_path: Path, sig: signal.Signals) -> None:
    first = write_scenario(tmp_path, """
        name: short
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav}
          agent: {account: agent1, play: FIX/speech/agent.wav}
        steps:
          - call: {from: caller, to: agent}
          - talk: 1
          - hangup: {party: caller, call: main}
        """, "short.yaml")
    long = write_scenario(tmp_path, """
        name: long
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav}
          agent: {account: agent1, play: FIX/speech/agent.wav}
        steps:
          - call: {from: caller, to: agent}
          - talk: 60
        """, "long.yaml")
    home, out = tmp_path / "home", tmp_path / "run"
    env = {**os.environ, "HARNESS_LAB_SIP_PORT": str(_BASE + 60), "HARNESS_LAB_NG_PORT": str(_BASE + 222),
           "HARNESS_LAB_RTP_MIN": str(_BASE + 300), "HARNESS_LAB_RTP_MAX": str(_BASE + 399)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "--home", str(home), "run", str(first), str(long),
                             "--out", str(out)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the long scenario's call is up once its agent has the ACK (pjsua logs no call state at its level)
        agent_log, up = out / "long" / "agent.sip.log", False
        deadline = time.monotonic() + 30
        while not up and time.monotonic() < deadline:
            time.sleep(0.2)
            up = agent_log.exists() and "Request msg ACK/" in agent_log.read_text(errors="replace")
        assert up, "the long scenario's call did not come up within 30 s"
        time.sleep(1.0)
        kids = children_of(proc.pid)
        lab = json.loads((home / "lab" / "state.json").read_text())["pids"]
        assert len(kids) >= 2, "the parties should be running"
        proc.send_signal(sig)
        _stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "results so far" in stderr
    data = json.loads((out / "results.json").read_text())
    assert data["interrupted"] is True and data["verdict"] == "ERROR"
    assert [s["name"] for s in data["scenarios"]] == ["short", "long"]
    assert data["scenarios"][0]["verdict"] == "PASS"
    assert data["scenarios"][1]["error"]["kind"] == "interrupted"
    time.sleep(0.5)
    leftovers = [p for p in kids | set(lab.values()) if alive(p)]
    assert not leftovers, f"processes left running: {leftovers}"
    assert not (home / "lab" / "state.json").exists()
