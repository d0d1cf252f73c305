"""The connect scenario end to end through the real lab: PASS when the path is good, FAIL naming the
silent direction when it is not, ERROR (and the run goes on) when a party crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from harness.contracts.yamlsrc import Fields
from harness.lab import LabStack
from harness.lab.stack import port_free
from harness.scenarios import load_paths
from harness.scenarios.context import RunContext
from harness.scenarios.registry import REGISTRY, ParseScope, step
from harness.scenarios.runner import Runner

from .cli_lines import BASE, Ports, sh
from .conftest import REPO, write_scenario


def run_cli(lab_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "--home", str(lab_home), "run", *args],
                          capture_output=True, text=True, timeout=180, cwd=REPO, env=dict(os.environ))


NIGHTLY = "scripts/nightly.sh"  #: README's first command
NIGHTLY_RUN = "harness run scenarios/nightly.yaml"  #: the README line it runs, with its extra arguments
NIGHTLY_PORTS = Ports(BASE + 900, BASE + 902, BASE + 910, BASE + 988)  # its own lab, apart from the session's


def test_nightly_script_passes_with_a_lab_it_starts_and_stops(tmp_path: Path) -> None:
    """``scripts/nightly.sh``: setup (quick when everything is installed), then the nightly suite against a
    lab it starts and stops itself (a home and ports of its own), here with ``--out`` for the results."""
    assert f"exec .venv/bin/{NIGHTLY_RUN} \"$@\"" in (REPO / NIGHTLY).read_text()
    home, out = tmp_path / "home", tmp_path / "run"
    proc = sh(f"{NIGHTLY} --out {out}", cwd=REPO, home=home, ports=NIGHTLY_PORTS, timeout=420)
    # a scenario its starved host left unjudged was run again by the harness itself (--reruns, default 1)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr
    assert proc.stdout.startswith("setup: ready (harness, version ")
    assert f"started the lab PBX at 127.0.0.1:{NIGHTLY_PORTS.sip}" in proc.stdout
    assert f"results: {out / 'results.json'}" in proc.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["verdict"] == "PASS"
    sc = next(s for s in data["scenarios"] if s["name"] == "connect")
    assert sc["verdict"] == "PASS"
    names = {c["name"] for c in sc["checks"]}
    for expected in ("register:caller", "call:main", "setup_time:main", "audio:caller->agent:mos",
                     "audio:agent->caller:mos", "audio:caller->agent:reference_match"):
        assert expected in names
    for c in sc["checks"]:
        assert {"name", "verdict", "value", "threshold", "unit"} <= set(c)
        assert c["value"] is not None
    timing = sc["sip"]["calls"]["main"]
    assert 0 < timing["setup_ms"] < 2000 and timing["sip_call_id"]
    suites = {el.get("name"): el for el in ET.parse(out / "junit.xml").getroot().iter("testsuite")}
    assert len(suites["connect"].findall("testcase")) == len(sc["checks"])
    assert set(suites) == {s["name"] for s in data["scenarios"]}
    assert all(s["verdict"] == "PASS" for s in data["scenarios"]), [
        (s["name"], [c["name"] for c in s["checks"] if c["verdict"] != "PASS"]) for s in data["scenarios"]]
    # it started the lab: it stopped it again
    assert "stopped the lab PBX" in proc.stdout
    assert not (home / "lab" / "state.json").exists()
    assert port_free("127.0.0.1", NIGHTLY_PORTS.sip) and port_free("127.0.0.1", NIGHTLY_PORTS.ng)


def test_silent_party_fails_naming_the_silent_direction(lab: LabStack, lab_home: Path, tmp_path: Path) -> None:
    sc = write_scenario(tmp_path, """
        name: connect-agent-silent
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav}
          # the agent's phone sends silence (a dead microphone) where the caller should hear agent.wav
          agent: {account: agent1, play: FIX/synthetic/silence.wav, reference: FIX/speech/agent.wav}
        steps:
          - call: {from: caller, to: agent}
          - talk: 9
          - hangup: {party: caller, call: main}
          - expect_audio: {call: main}
        """)
    out = tmp_path / "run"
    proc = run_cli(lab_home, str(sc), "--out", str(out), "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads((out / "results.json").read_text())
    checks = {c["name"]: c for c in data["scenarios"][0]["checks"]}
    silent = checks["audio:agent->caller:audio_present"]
    assert silent["verdict"] == "FAIL"
    assert "audio" in silent["detail"].lower()
    assert checks["audio:caller->agent:audio_present"]["verdict"] == "PASS"
    assert checks["audio:caller->agent:mos"]["verdict"] == "PASS"
    assert "audio:agent->caller:audio_present FAIL" in proc.stdout
    # only the network's own figures may pass: a dead microphone still sends RTP packets
    network = ("audio:agent->caller:emodel_r", "audio:agent->caller:packet_loss")
    assert not any(n.startswith("audio:agent->caller:") and c["verdict"] == "PASS"
                   for n, c in checks.items() if n not in network)


if "test_crash" not in REGISTRY:
    @step("test_crash")
    @dataclass(frozen=True)
    class CrashParty:
        """Test-only step: make a party's pjsua2 child abort, as an assertion in the wheel would."""

        party: str

        @classmethod
        def parse(cls, f: Fields, scope: ParseScope) -> CrashParty:
            return cls(scope.party(f, "party"))

        def run(self, ctx: RunContext) -> None:
            ctx.party(self.party).request("crash", timeout=5)


def test_crashed_party_is_an_error_and_the_run_goes_on(lab: LabStack, tmp_path: Path) -> None:
    crash = write_scenario(tmp_path, """
        name: crashing
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav}
          agent: {account: agent1, play: FIX/speech/agent.wav}
        steps:
          - call: {from: caller, to: agent}
          - test_crash: {party: agent}
          - talk: 2
        """, "crash.yaml")
    scenarios = load_paths([crash, REPO / "scenarios" / "connect.yaml"])
    lines: list[str] = []
    result = Runner(lab.target, tmp_path / "run", lab=lab, log=lines.append).run_all(scenarios)
    first, second = result.scenarios
    assert first.verdict.value == "ERROR"
    assert first.error is not None and first.error["kind"] == "PartyCrashed"
    assert "SIGABRT" in first.error["message"] and first.error["step"] == "step 2 (test_crash)"
    assert first.error["log_tail"]
    assert first.error["blame"] == "harness"  # a crashed party is the harness's trouble, not the PBX's
    assert [c.blame for c in first.checks if c.verdict.value != "PASS"] == ["harness"]
    assert first.skipped_steps == ["step 3 (talk)"]
    assert second.verdict.value == "PASS", [c for c in second.checks if c.verdict.value != "PASS"]
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [s["verdict"] for s in stored["scenarios"]] == ["ERROR", "PASS"]
    assert result.harness_failed()  # 'harness run' exits 3: CI tells it from a PBX's FAIL
