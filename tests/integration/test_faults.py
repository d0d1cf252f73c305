"""Fault scenarios against the real lab in namespace mode: each fault is injected, each scenario ends with
the right verdict and diagnosis (read back from the findings store), none hangs, the suite goes on after
every failure, and the lab is whole again after each scenario. The namespace and every lab process are
gone at the end, also when a test fails."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.results import RunResult, ScenarioResult
from harness.contracts.settings import Settings
from harness.contracts.verdict import Verdict
from harness.findings.findings_sink import FindingsSink
from harness.findings.sqlite import SqliteStore
from harness.lab import LabConfig, LabStack
from harness.lab.netns import default_address
from harness.scenarios.session import run_session

from .conftest import REPO, write_scenario

_BASE = int(os.environ.get("HARNESS_TEST_PORT_BASE", "36000"))
LAB = LabConfig(ip=default_address(_BASE + 960), sip_port=_BASE + 960, ng_port=_BASE + 962, rtp_min=_BASE + 963,
                rtp_max=_BASE + 999, netns=True)


Suite = tuple[RunResult, dict[tuple[str, str], Any]]  #: the run, and its findings by (scenario, check)


def processes_of(lab_dir: Path) -> list[str]:
    """Command lines of the running processes that belong to the lab in ``lab_dir``."""
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(lab_dir) in text:
            out.append(text)
    return out


def namespaces() -> list[str]:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A harness home whose lab runs in its own namespace; afterwards nothing of it is left."""
    home = tmp_path_factory.mktemp("faults-home")
    stack = LabStack(home / "lab", LAB)
    assert stack.netns is not None
    name = stack.netns.plan.name
    try:
        stack.start()
        assert name in namespaces()
        status = stack.status()
        assert status.up and status.components[0].name == "netem", status.as_dict()
        yield home
    finally:
        stack.stop()
        assert name not in namespaces(), "the lab's namespace outlived the lab"
        assert not processes_of(home / "lab"), "a lab process outlived the lab"


@pytest.fixture(scope="module")
def suite(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    """The shipped fault suite, run once; its results and the findings it stored, by scenario."""
    out = tmp_path_factory.mktemp("faults-run") / "run"
    store = SqliteStore(out.parent / "findings.db")
    result = run_session(Settings(home=home), [REPO / "scenarios" / "faults-suite.yaml"], target_file=None,
                         out=out, log=lambda _m: None, sinks=[FindingsSink(store)])
    found = {(f.key.scenario, f.key.check): f for f in store.findings()}
    return result, found


def scenario(result: RunResult, name: str) -> ScenarioResult:
    return next(s for s in result.scenarios if s.name == name)


def checks(sc: ScenarioResult) -> dict[str, Any]:
    return {c.name: c for c in sc.checks}


def test_the_suite_runs_every_fault_to_its_end_in_bounded_time(suite: Suite) -> None:
    result, _ = suite
    assert [s.name for s in result.scenarios] == [
        "faults-pbx-restart", "faults-rtpengine-dies", "faults-agent-no-answer", "faults-bye-from-nowhere",
        "faults-rtp-timeout", "faults-register-expires"]
    assert not result.interrupted
    for sc in result.scenarios:
        assert sc.verdict == Verdict.FAIL, f"{sc.name}: each fault must be reported, got {sc.verdict}"
        assert sc.duration_s < 30, f"{sc.name} took {sc.duration_s:.0f} s"
        assert "lab" not in checks(sc), f"{sc.name}: the lab was not whole after the scenario"
        assert not [c for c in sc.checks if c.verdict == Verdict.ERROR], f"{sc.name}: {sc.checks}"


def test_pbx_restart_mid_call(suite: Suite) -> None:
    result, found = suite
    c = checks(scenario(result, "faults-pbx-restart"))
    assert c["fault:kamailio"].verdict == Verdict.PASS and "started again" in c["fault:kamailio"].detail
    # the established call survives the restart: both ends up, audio both ways, BYE still routed
    assert c["call:main:connected"].verdict == Verdict.PASS
    assert c["rtp:main:caller->agent:flowing"].verdict == Verdict.PASS
    assert c["rtp:main:agent->caller:flowing"].verdict == Verdict.PASS
    assert c["hangup:main"].verdict == Verdict.PASS
    # the restart emptied kamailio's in-memory location table: a new call to the agent finds nobody
    assert (c["call:after_restart"].verdict, c["call:after_restart"].value) == (Verdict.FAIL, 404)
    f = found[("faults-pbx-restart", "call:after_restart")]
    assert f.diagnosis is not None and f.diagnosis.rule == "registration_lost"
    assert f.diagnosis.cause.startswith("404: the PBX restart emptied its location table: agent registered (200) "
                                        "before the restart and did not register again")
    assert f.diagnosis.confidence == "likely" and "usrloc db_mode" in f.diagnosis.fix
    assert any(fact.startswith("fault:kamailio: killed kamailio") for fact in f.diagnosis.facts)


def test_rtpengine_dies_mid_call(suite: Suite) -> None:
    result, found = suite
    c = checks(scenario(result, "faults-rtpengine-dies"))
    assert c["rtp:before_fault:caller->agent:flowing"].verdict == Verdict.PASS  # media flowed before
    assert c["fault:rtpengine"].verdict == Verdict.PASS
    assert c["call:main:connected"].verdict == Verdict.PASS  # signalling does not notice ...
    for direction in ("caller->agent", "agent->caller"):  # ... the media does: dead air both ways
        chk = c[f"rtp:main:{direction}:flowing"]
        assert chk.verdict == Verdict.FAIL and chk.value is not None and chk.value < 5
        f = found[("faults-rtpengine-dies", f"rtp:main:{direction}:flowing")]
        assert f.diagnosis is not None and f.diagnosis.rule == "media_stopped"
        assert f.diagnosis.cause.startswith("media stopped while the call stayed up (both directions): the media "
                                            "relay died (killed rtpengine")
        assert "rtpengine" in f.diagnosis.fix and "RTP timeout" in f.diagnosis.fix
        assert any(fact.startswith("fault:rtpengine: killed rtpengine") for fact in f.diagnosis.facts)
    assert c["hangup:main"].verdict == Verdict.PASS


def test_agent_does_not_answer(suite: Suite) -> None:
    result, found = suite
    sc = scenario(result, "faults-agent-no-answer")
    assert (checks(sc)["call:main"].verdict, checks(sc)["call:main"].value) == (Verdict.FAIL, "no answer")
    f = found[("faults-agent-no-answer", "call:main")]
    assert f.diagnosis is not None and f.diagnosis.rule == "no_answer"
    assert "it rang (180 Ringing) but nobody answered" in f.diagnosis.cause


def test_bye_from_nowhere_drops_one_end(suite: Suite) -> None:
    result, found = suite
    c = checks(scenario(result, "faults-bye-from-nowhere"))
    assert c["fault:bye:main"].verdict == Verdict.PASS and c["fault:bye:main"].value == 200
    chk = c["call:main:connected"]
    assert chk.verdict == Verdict.FAIL and chk.value == "dropped"
    assert f"which is not the PBX ({LAB.ip}:{LAB.sip_port}): a BYE from nowhere" in chk.detail
    assert "still up at caller" in chk.detail
    f = found[("faults-bye-from-nowhere", "call:main:connected")]
    assert f.diagnosis is not None and f.diagnosis.rule == "call_dropped"
    assert f.diagnosis.cause.startswith("a BYE from nowhere dropped agent's end of the call")
    assert f"which is not the PBX ({LAB.ip}:{LAB.sip_port})" in f.diagnosis.cause
    assert "caller's end stayed up" in f.diagnosis.cause and "accept SIP only from the PBX" in f.diagnosis.fix
    assert any("User-Agent: harness-fault" in fact for fact in f.diagnosis.facts)  # the forged BYE, from the log
    assert c["hangup:main"].verdict == Verdict.PASS  # the caller's end is released by its own BYE


def test_rtp_timeout_is_dead_air_then_recovery(suite: Suite) -> None:
    result, found = suite
    c = checks(scenario(result, "faults-rtp-timeout"))
    assert c["line:outage"].verdict == Verdict.PASS
    assert c["call:main:connected"].verdict == Verdict.PASS
    for direction in ("caller->agent", "agent->caller"):
        dead = c[f"rtp:main:{direction}:flowing"]
        assert dead.verdict == Verdict.FAIL and dead.value is not None and dead.value < 5
    assert c["rtp:recovered:caller->agent:flowing"].verdict == Verdict.PASS
    assert c["rtp:recovered:agent->caller:flowing"].verdict == Verdict.PASS
    for direction in ("caller->agent", "agent->caller"):
        f = found[("faults-rtp-timeout", f"rtp:main:{direction}:flowing")]
        assert f.diagnosis is not None and f.diagnosis.rule == "media_stopped"
        assert "loss" in f.diagnosis.cause  # the network lost the media
        assert f.diagnosis.cause.startswith("media stopped while the call stayed up (both directions): the network "
                                            "lost the media, packet loss from a line outage (media cut both for 4 s)")
        assert "relay died" not in f.diagnosis.cause and "RTP timeout" in f.diagnosis.fix


def test_register_expires(suite: Suite) -> None:
    result, found = suite
    c = checks(scenario(result, "faults-register-expires"))
    assert c["register:agent"].verdict == Verdict.PASS and "never refreshed" in c["register:agent"].detail
    assert c["call:before_expiry"].verdict == Verdict.PASS
    assert (c["call:after_expiry"].verdict, c["call:after_expiry"].value) == (Verdict.FAIL, 404)
    f = found[("faults-register-expires", "call:after_expiry")]
    # the SIP logs time the call against the registration: it came after the 10 s had run out
    assert f.diagnosis is not None and f.diagnosis.rule == "registration_lost"
    assert f.diagnosis.cause.startswith("404: agent's registration expired: it registered (200) for 10 s and never "
                                        "refreshed it, and this call came at least ")
    assert "nobody is registered" in f.diagnosis.cause and f.diagnosis.confidence == "likely"


def test_lab_is_whole_again_after_a_scenario_that_broke_it(home: Path, tmp_path: Path) -> None:
    """A scenario that kills rtpengine, cuts the line and then stops on a failure leaves nothing behind:
    the next scenario of the run gets a working lab and a clean line."""
    broken = write_scenario(tmp_path, """
        name: breaks-the-lab
        parties:
          caller: {account: caller}
        steps:
          - lab_fault: {component: rtpengine, action: kill}
          - impair: {loss_pct: 100, media_only: false}
          - call: {from: caller, to: agent1, timeout_s: 1}
        """, "broken.yaml")
    normal = write_scenario(tmp_path, """
        name: after-it
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav, loop: true}
          agent: {account: agent1, play: FIX/speech/agent.wav, loop: true}
        steps:
          - call: {from: caller, to: agent}
          - expect_connected: {call: main, seconds: 1}
          - hangup: {party: caller, call: main}
        """, "normal.yaml")
    result = run_session(Settings(home=home), [broken, normal], target_file=None, out=tmp_path / "run",
                         log=lambda _m: None)
    first, second = result.scenarios
    assert first.verdict == Verdict.FAIL and checks(first)["call:main"].value == "no answer"
    assert second.verdict == Verdict.PASS, second.checks
    assert "lab" not in checks(first) and "lab" not in checks(second)
    stack = LabStack(home / "lab")
    assert stack.is_running() and stack.netns is not None
    lines = stack.netns.control.status()["lines"]
    assert lines["to_lab"]["describe"] == "clean" and lines["from_lab"]["describe"] == "clean"
