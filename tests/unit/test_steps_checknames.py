"""Every check a scenario makes is named by a CheckName (its ``id``), and the text it writes is the name the
results, the JUnit test names and the finding keys have always used: read from the source (no check is
made from text), and run for a representative set of steps against parties faked from their events."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import harness.audio
from harness.contracts.checkname import CheckName
from harness.contracts.errors import LabError, PartyTimeout, StepFailed
from harness.contracts.target import Target
from harness.contracts.verdict import CheckResult
from harness.lab.netem import Impairment
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.runner import Runner
from harness.scenarios.scenario_model import PartySpec, Scenario, StepEntry
from harness.scenarios.steps_audio import CheckAudio, ExpectAudio, judge_direction
from harness.scenarios.steps_call import Call, ExpectDtmf, ExpectSetup, Hangup
from harness.scenarios.steps_connected import ExpectConnected
from harness.scenarios.steps_faults import Impair, LabFault, Outage
from harness.scenarios.steps_hold import ExpectHoldAudio, Hold, Resume
from harness.scenarios.steps_ivr_queue import ExpectAnsweredBy
from harness.scenarios.steps_rawsip import ForgeBye
from harness.scenarios.steps_recording import ExpectRecording
from harness.scenarios.steps_security import WeakPasswords
from harness.scenarios.steps_security_base import finding, security_check
from harness.scenarios.steps_system import ExpectRtp, RegisterTime
from harness.scenarios.steps_transfer import Offer, Transfer

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "harness" / "scenarios"
T0 = 1000.0
Event = dict[str, Any]


# ---- from the source --------------------------------------------------------------------------------
def _made_from_text(node: ast.expr) -> bool:
    return (isinstance(node, ast.JoinedStr | ast.BinOp) or
            (isinstance(node, ast.Constant) and isinstance(node.value, str)))


def test_no_check_in_the_scenarios_is_made_from_text() -> None:
    """Checks are made with CheckResult.of/compare/error and a CheckName, never with the bare constructor
    (which leaves ``id`` empty) nor a name written as text."""
    found = []
    for path in sorted(SCENARIOS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            where = f"{path.name}:{node.lineno}"
            if isinstance(f, ast.Name) and f.id == "CheckResult":
                found.append(f"{where}: CheckResult(...) without its CheckName")
            elif (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "CheckResult"
                  and f.attr in ("of", "compare", "error") and node.args and _made_from_text(node.args[0])):
                found.append(f"{where}: CheckResult.{f.attr} named by text")
            elif isinstance(f, ast.Name) and f.id in ("finding", "finding_error", "judged") and node.args \
                    and _made_from_text(node.args[0]):
                found.append(f"{where}: {f.id} named by text")
    assert not found, found


# ---- run: parties faked from their events -------------------------------------------------------------
class FakeParty:
    """What a step asks a pjsua2 party, answered from a list of events (append to it as the call goes on)."""

    def __init__(self, name: str, call: str, events: list[Event]):
        self.name, self.own_call, self.events, self.alive = name, call, events, True
        self.sip_address, self.local_ip, self.sip_log_file = "", "127.0.0.1", Path("/nonexistent")

    def mark(self) -> int:
        return 0

    def find(self, pred: Any, since: int = 0) -> Event | None:
        return next((e for e in self.events[since:] if pred(e)), None)

    def wait_event(self, pred: Any, timeout: float, what: str, since: int = 0) -> Event:
        e = self.find(pred, since)
        if e is None:
            raise PartyTimeout(self.name, f"no {what}")
        return e

    def call_events(self, call: str) -> list[Event]:
        return [e for e in self.events if e.get("call") == call]

    def call(self, account: str, uri: str, **kw: Any) -> dict[str, Any]:
        return {"call": self.own_call, "t_invite": T0}

    def stats(self, call: str) -> dict[str, Any]:
        return {"rx_packets": 100, "tx_packets": 100, "remote_rtp": "127.0.0.1:4000"}

    def request(self, cmd: str, **kw: Any) -> dict[str, Any]:
        return {"t": T0}

    def sync(self, timeout: float = 5.0) -> None:
        pass

    def hangup(self, call: str) -> None:
        pass

    hold = resume = hangup

    def dtmf(self, call: str, digit: str) -> None:
        pass


def state(call: str, st: str, **kw: Any) -> Event:
    return {"event": "call_state", "call": call, "state": st, "code": 200, "t": T0 + 0.5, **kw}


class FakeAnalysis:
    def __init__(self) -> None:
        self.checks = [CheckResult.compare(m, 4.0, ">=", 3.5) for m in ("mos", "delay")]

    def to_dict(self) -> dict[str, Any]:
        return {"delay_ms": 20.0}


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunContext:
    monkeypatch.setattr(harness.audio, "read_wav", lambda _p: (np.zeros(800), 8000))
    monkeypatch.setattr(harness.audio, "analyze", lambda *a, **kw: FakeAnalysis())
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    parties = {"caller": PartySpec("caller", "caller", play="caller.wav"), "agent": PartySpec("agent", "agent1"),
               "agent2": PartySpec("agent2", "agent2", play="agent.wav")}
    target = Target.from_mapping({"name": "pbx", "pbx": {"host": "127.0.0.1"}, "accounts": {
        "caller": {"username": "1001", "password": "Wh1te-Rabbit-42x"},
        "agent1": {"username": "2001", "password": "Gr3en-Turtle-77y"}}}, "pbx.yaml")
    c = RunContext(Scenario(name="s", path="s.yaml", parties=parties), target, tmp_path)
    c.parties["caller"] = FakeParty("caller", "c1", [  # type: ignore[assignment]
        state("c1", "CONFIRMED", sip_call_id="sid", times={"t_200": T0 + 0.2}),
        {"event": "media_state", "call": "c1", "status": "local_hold"},
        {"event": "media_state", "call": "c1", "status": "active"}])
    c.parties["agent"] = FakeParty("agent", "c9", [  # type: ignore[assignment]
        {"event": "incoming", "call": "c9", "sip_call_id": "sid", "t": T0 + 0.1}, state("c9", "CONFIRMED"),
        {"event": "dtmf", "call": "c9", "digit": "1"}])
    c.parties["agent2"] = FakeParty("agent2", "c7", [  # type: ignore[assignment]
        {"event": "incoming", "call": "c7", "t": T0 + 0.1}])
    return c


def test_each_check_a_step_makes_carries_its_name_as_an_id(ctx: RunContext, tmp_path: Path) -> None:
    Call("caller", "agent", "main", "answer", None, None).run(ctx)
    ExpectSetup("main", None).run(ctx)
    ExpectDtmf("agent", "main", "1", 0.1).run(ctx)
    Hold("caller", "main").run(ctx)
    Resume("caller", "main").run(ctx)
    ExpectConnected("main", 0.0, 0.5, "before_fault").run(ctx)
    ExpectRtp("main", 50).run(ctx)
    ExpectHoldAudio("caller", "main", 1.0, -60.0).run(ctx)  # the holder plays nothing: an ERROR, named
    for party, call in (("agent", "c9"), ("caller", "c1")):
        (tmp_path / f"{party}-{call}.wav").touch()
    CheckAudio("main", 0.0, "resumed").run(ctx)
    ExpectAudio("main", "both").run(ctx)
    ExpectAudio("main", "both", echo=True).run(ctx)
    ctx.calls["transferred"] = CallLeg("transferred", "caller", "c1", "sip:x", callee="agent", callee_call="c9",
                                       answered=True)
    ExpectAudio("transferred", "caller->callee").run(ctx)
    ExpectAudio("transferred", "both", echo=True).run(ctx)
    ExpectAnsweredBy("agent", "main", 1.0, ("agent2",), None).run(ctx)
    judge_direction(ctx, CheckName("recording", call="main", direction=("caller", "agent")),
                    tmp_path / "agent-c9.wav", "caller.wav", None, None, only=("mos",))
    ExpectRecording("main", 0.0, 1.5, 250.0).run(ctx)  # the profile names no recordings: an ERROR, named
    Transfer("agent", "main", "agent2", None, "x", "busy", 1.0)._failed(
        ctx, ctx.calls["main"], ctx.party("agent"), "c9", ctx.party("caller"), "c1", 486, False,  # type: ignore[arg-type]
        Offer(True, "agent2 was offered the call", 486))
    for ev in (state("c1", "DISCONNECTED"), state("c9", "DISCONNECTED")):
        ctx.party("caller" if ev["call"] == "c1" else "agent").events.append(ev)  # type: ignore[attr-defined]
    Hangup("caller", "main").run(ctx)
    ExpectConnected("main", 0.0, 0.5, "main").run(ctx)
    for lab_step in (Impair(Impairment(loss_pct=5.0), "to_lab", None), Outage(1.0, True, "both", True),
                     LabFault("kamailio", "restart"), ForgeBye("main", "agent2")):
        with pytest.raises(StepFailed):
            lab_step.run(ctx)
    WeakPasswords(10).run(ctx)
    ctx.check(finding(security_check("auth", "register_without_credentials"), True, 401, "401/407", "critical"))
    bare = RunContext(ctx.scenario, Target.from_mapping({"name": "bare", "pbx": {"host": "127.0.0.1"}}, "bare.yaml"),
                      tmp_path)
    RegisterTime(None, None, None, 1.0).run(bare)  # no account to register: an ERROR, and no packet sent

    checks = ctx.checks + bare.checks
    for c in checks:
        assert c.id is not None and str(c.id) == c.name, c.name
        assert CheckName.from_dict(c.to_dict()["id"]) == c.id  # results.json keeps the parts
    assert [c.name for c in checks] == [
        "call:main", "setup_time:main", "dtmf:agent:main", "hold:main", "resume:main", "call:before_fault:connected",
        "rtp:before_fault:agent->caller:flowing", "rtp:before_fault:caller->agent:flowing", "rtp:caller->agent",
        "rtp:agent->caller", "hold:main:privacy",
        "audio:resumed:caller->agent:mos", "audio:resumed:caller->agent:delay",
        "audio:resumed:agent->caller", "audio:caller->agent:mos", "audio:caller->agent:delay",
        "audio:agent->caller", "audio:echo:caller->caller:mos", "audio:echo:caller->caller:delay",
        "audio:transferred:caller->agent:mos", "audio:transferred:caller->agent:delay",
        "audio:transferred:echo:caller->caller:mos", "audio:transferred:echo:caller->caller:delay",
        "answered_by:main", "answer_time:main", "skipped:main:agent2", "recording:main:caller->agent:mos",
        "recording:main:found", "transfer:main:outcome", "transfer:main:offered", "transfer:main:recovered",
        "hangup:main", "call:main:connected", "line:to_lab", "line:outage", "fault:kamailio", "fault:bye:main",
        "security:passwords:profile", "security:auth:register_without_credentials", "register_time"]
    assert ctx.audio.keys() >= {"caller->agent", "audio:transferred:caller->agent", "audio:echo:caller->caller",
                                "audio:resumed:caller->agent", "recording:main:caller->agent"}
    assert ctx.artifacts["received:audio:caller->agent"] == "agent-c9.wav"


def test_the_runner_names_what_stopped_a_scenario_and_a_broken_lab(tmp_path: Path) -> None:
    class Boom:
        def run(self, ctx: RunContext) -> None:
            raise PartyTimeout("caller", "no answer")

    class BrokenLab:
        dir, pids = tmp_path, {}

        def check(self) -> None:
            raise LabError("kamailio died")

    target = Target.from_mapping({"name": "pbx", "pbx": {"host": "127.0.0.1"}}, "pbx.yaml")
    sc = Scenario(name="s", path="s.yaml", steps=(StepEntry("boom", Boom(), 0, 3),))
    res = Runner(target, tmp_path / "run", log=lambda _m: None, lab=BrokenLab()).run_one(sc)  # type: ignore[arg-type]
    assert [(c.name, str(c.id)) for c in res.checks] == [("step:step 1 (boom)", "step:step 1 (boom)"),
                                                         ("lab", "lab")]
