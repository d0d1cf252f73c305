"""The harness knows when it is the problem: a party starved while its audio was measured makes the
audio checks ERROR with the "harness host overloaded" diagnosis and exit code 3, never a FAIL that blames
the PBX; and on a healthy run every party reports its own clocks and scheduling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.lab import LabStack

from .conftest import REPO, write_scenario

SCENARIO = """
    name: starved
    parties:
      caller: {account: caller, play: FIX/speech/caller.wav}
      agent: {account: agent1, play: FIX/speech/agent.wav, answer: auto}
    steps:
      - call: {from: caller, to: agent, as: main}
      - talk: 7
      - hangup: {party: caller, call: main}
      - expect_audio: {call: main}
    """


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"harness.sip.child" in cmd:
            out.append(int(entry.name))
    return sorted(out)


def _run_and_starve_the_caller(lab_home: Path, tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    """``harness run`` of the scenario; once its call carries audio, the caller's process is frozen for
    1.5 s, as a starved host would freeze it."""
    scenario = write_scenario(tmp_path, SCENARIO)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "--home", str(lab_home), "run", str(scenario),
                             "--out", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO, env=dict(os.environ))
    deadline = time.monotonic() + 30
    sdir = out / "starved"
    while time.monotonic() < deadline and not list(sdir.glob("caller-*.wav")):
        time.sleep(0.1)
    time.sleep(2.0)
    kids = _children(proc.pid)
    assert len(kids) == 2, kids
    os.kill(kids[0], signal.SIGSTOP)
    time.sleep(1.5)
    os.kill(kids[0], signal.SIGCONT)
    return proc, out


def _starved_checks(sc: dict) -> list[dict]:
    bad = [c for c in sc["checks"] if c["verdict"] != "PASS"]
    for c in bad:
        assert c["verdict"] == "ERROR" and c["blame"] == "harness", c
        assert c["detail"].startswith("harness host overloaded: party "), c["detail"]
        assert "ms late (limit 40 ms" in c["detail"] and "lab PBX runs on the same host" in c["detail"]
    return bad


def test_a_party_starved_mid_call_is_a_harness_error_with_exit_code_3(lab: LabStack, lab_home: Path,
                                                                        tmp_path: Path) -> None:
    proc, out = _run_and_starve_the_caller(lab_home, tmp_path, "--reruns", "0")
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, stdout
    assert "harness-side errors (not the target's fault) in: starved" in stdout
    sc = json.loads((out / "results.json").read_text())["scenarios"][0]
    assert sc["health"]["overloaded"] is True
    assert _starved_checks(sc), "freezing a party for 1.5 s must have hurt the audio"
    assert sc["attempts"] == []  # --reruns 0: judged once
    window = next(w for w in sc["health"]["windows"] if w["overloaded"])
    assert window["step"].endswith("(expect_audio)")
    late = max(p["media_late_max_ms"] for p in window["parties"].values())
    assert 1400 <= late <= 4000, window
    # the finding says it is the harness's trouble, with the figures
    findings = json.loads((out / "findings.json").read_text())
    mine = [(f["check"], f["diagnosis"]["rule"]) for f in findings["findings"] if f.get("scenario") == "starved"]
    assert mine == [("harness", "harness_overloaded")], mine  # one finding of the harness, none against the PBX


def test_a_starved_scenario_is_run_again_and_its_first_attempt_kept(lab: LabStack, lab_home: Path,
                                                                      tmp_path: Path) -> None:
    """By default (--reruns 1) the scenario the starved host left unjudged runs once more; the first
    attempt stays whole in ``starved.attempt1/`` and in the scenario's ``attempts``."""
    proc, out = _run_and_starve_the_caller(lab_home, tmp_path)
    stdout, _ = proc.communicate(timeout=120)
    sc = json.loads((out / "results.json").read_text())["scenarios"][0]
    [first] = sc["attempts"]
    assert first["attempt"] == 1 and first["verdict"] == "ERROR" and first["out_dir"] == "starved.attempt1"
    assert _starved_checks(first) == first["checks"] and first["checks"]
    assert any("ms late (limit 40 ms" in r for r in first["why_run_again"]), first
    kept = out / "starved.attempt1"
    assert list(kept.glob("caller-*.wav")) and json.loads((kept / "result.json").read_text())["verdict"] == "ERROR"
    assert sc["out_dir"] == "starved" and list((out / "starved").glob("caller-*.wav"))
    assert "running it again, attempt 2 of 2" in stdout
    assert "run again because the harness's host was overloaded: starved (attempts kept in starved.attempt1)" in stdout
    # the second attempt is the verdict: PASS, or (if this host stalled again) ERROR of the harness, exit 3
    again = [c for c in sc["checks"] if c["verdict"] != "PASS"]
    assert all(c["verdict"] == "ERROR" and c["blame"] == "harness" for c in again), again
    assert (sc["verdict"], proc.returncode) == (("ERROR", 3) if again else ("PASS", 0)), stdout
    assert "not judged" in (out / "junit.xml").read_text()


def test_a_healthy_run_reports_each_partys_clocks_and_scheduling(lab: LabStack, tmp_path: Path) -> None:
    from harness.scenarios import load_paths
    from harness.scenarios.runner import Runner

    scenario = write_scenario(tmp_path, SCENARIO.replace("talk: 7", "talk: 2"))
    result = Runner(lab.target, tmp_path / "run", lab=lab, log=lambda _m: None).run_all(load_paths([scenario]))
    health = result.scenarios[0].health
    # the scenario's parties, and the lab's own IVR, queue and echo parties (harness parties too)
    assert set(health["parties"]) == {"caller", "agent", "lab ivr", "lab queue", "lab echo"}
    ticks = {n: p["media_ticks"] for n, p in health["parties"].items()}
    assert health["unmeasured"] == [], health["unmeasured"]
    for p in health["parties"].values():
        # 50 a second while the parties lived (the lab's parties too: the runner waits for their health
        # file to reach the scenario's end, which the services rewrite once a second)
        assert p["media_ticks"] > 100, ticks
        assert p["media_late_max_ms"] is not None and p["wake_late_max_ms"] is not None
        assert p["scheduling"].startswith(("SCHED_RR", "normal ("))
    assert health["host"]["measured"] is True
    assert health["limits"]["max_media_late_ms"] == 40.0
