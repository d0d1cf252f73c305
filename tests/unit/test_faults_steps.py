"""Fault and impairment steps without a lab: what they accept at load time (errors naming file, line and
field), what they refuse before a run (preflight), what they do without the lab they need, and the SIP
they build from a party's log (the dialog of a forged BYE)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.contracts.errors import InputError, ProbeScopeError, ScenarioError, StepFailed
from harness.contracts.siplog import read_messages
from harness.contracts.sipmsg import parse
from harness.contracts.target import Target
from harness.contracts.verdict import Verdict
from harness.lab.config import LabConfig, lab_target
from harness.lab.netem import Impairment
from harness.scenarios import load_scenario
from harness.scenarios.context import RunContext
from harness.scenarios.loader import load_paths
from harness.scenarios.session import preflight
from harness.scenarios.steps_faults import Impair, LabFault
from harness.scenarios.steps_rawsip import dialog_from_log, forged_bye, party_scope

REPO = Path(__file__).resolve().parents[2]
PARTIES = """
parties:
  caller: {account: caller}
  agent: {account: agent1, register: false}
"""


def write(tmp_path: Path, steps: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text("name: s\n" + PARTIES + "steps:\n" + textwrap.indent(textwrap.dedent(steps).strip(), "  ") + "\n")
    return p


def test_shipped_fault_and_impairment_scenarios_load() -> None:
    files = sorted((REPO / "scenarios").glob("faults-*.yaml")) + sorted((REPO / "scenarios").glob("impairment-*.yaml"))
    assert len(files) >= 8
    scenarios = load_paths(files)
    names = {sc.name for sc in scenarios}
    assert {"faults-pbx-restart", "faults-rtpengine-dies", "faults-agent-no-answer", "faults-bye-from-nowhere",
            "faults-rtp-timeout", "faults-register-expires", "impairment-loss5"} <= names
    nightly = (REPO / "scenarios" / "nightly.yaml").read_text()
    assert "faults-" not in nightly and "impairment-" not in nightly
    loss5 = next(sc for sc in scenarios if sc.name == "impairment-loss5")
    impair = loss5.steps[0].step
    assert isinstance(impair, Impair) and impair.impairment == Impairment(loss_pct=5.0) and impair.direction == "to_lab"


def test_steps_parse_their_parameters(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, """
        - impair: {loss_pct: 3, burst: 4, delay_ms: 20, jitter_ms: 5, reorder_pct: 10, rate_kbit: 256,
                   direction: from_lab, media_only: false, seed: 3}
        - outage: 2.5
        - clear_impairment
        - lab_fault: {component: rtpengine, action: restart}
        - register_once: {party: agent, expires: 12}
        - call: {from: caller, to: agent}
        - forge_bye: {call: main}
        - expect_connected: {call: main, seconds: 1.5, label: after}
        """))
    imp = sc.steps[0].step
    assert imp.impairment == Impairment(3, 4, 20, 5, 10, 256, False) and imp.seed == 3
    assert (sc.steps[1].step.seconds, sc.steps[1].step.wait, sc.steps[1].step.direction) == (2.5, True, "both")
    assert isinstance(sc.steps[3].step, LabFault) and sc.steps[3].step.action == "restart"
    assert sc.steps[4].step.expires == 12
    assert sc.steps[6].step.party is None and sc.steps[7].step.label == "after"


@pytest.mark.parametrize(("steps", "message"), [
    ("- impair: {}", "names no impairment"),
    ("- impair: {reorder_pct: 5}", "reorder_pct: needs delay_ms > 0"),
    ("- impair: {loss_pct: 150}", "loss_pct: 150.0 is out of range"),
    ("- impair: {loss_pct: 5, direction: up}", "direction: must be one of both, to_lab, from_lab"),
    ("- impair: {loss_pct: 5, lose: 3}", "unknown field 'lose'"),
    ("- outage: {seconds: 0}", "seconds: 0.0 is out of range"),
    ("- lab_fault: {component: asterisk, action: kill}", "component: must be one of kamailio, rtpengine, services"),
    ("- lab_fault: {component: kamailio}", "missing required field"),
    ("- register_once: {party: caller}", "registers (and refreshes) by itself"),
    ("- forge_bye: {call: nope}", "unknown call 'nope'"),
    ("- expect_connected: {call: main}", "unknown call 'main'"),
])
def test_bad_parameters_name_file_line_and_field(tmp_path: Path, steps: str, message: str) -> None:
    path = write(tmp_path, steps)
    with pytest.raises(ScenarioError, match=r"s\.yaml:") as err:
        load_scenario(path)
    assert message in str(err.value)
    assert f"{path}:" in str(err.value) and "steps[0]" in str(err.value)


def user_pbx() -> Target:
    return Target.from_mapping({"name": "pbx", "pbx": {"host": "127.0.0.1", "port": 5060},
                                "accounts": {"caller": {"username": "1001", "password": "x"},
                                             "agent1": {"username": "2001", "password": "y"}}}, "pbx.yaml")


def test_preflight_refuses_lab_steps_against_a_users_pbx(tmp_path: Path) -> None:
    faults = load_scenario(write(tmp_path, "- lab_fault: {component: kamailio, action: restart}"))
    with pytest.raises(InputError, match=r"acts on the embedded lab and cannot run against pbx\.yaml"):
        preflight([faults], user_pbx())
    preflight([faults], lab_target(LabConfig(), tmp_path))  # any lab will do for lab_fault

    impair = load_scenario(write(tmp_path, "- impair: {loss_pct: 5}"))
    with pytest.raises(InputError, match="network-namespace mode"):
        preflight([impair], lab_target(LabConfig(), tmp_path))  # a loopback lab has no line to impair
    preflight([impair], lab_target(LabConfig(ip="10.233.0.2", netns=True), tmp_path))
    # steps that judge only what the parties see run anywhere
    anywhere = load_scenario(write(tmp_path, "- register_once: {party: agent}"))
    preflight([anywhere], user_pbx())


def test_without_the_lab_a_lab_step_is_an_error_not_a_pass(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, """
        - impair: {loss_pct: 5}
        - lab_fault: {component: rtpengine, action: kill}
        """))
    ctx = RunContext(sc, user_pbx(), tmp_path)
    for entry in sc.steps:
        with pytest.raises(StepFailed, match="needs"):
            entry.step.run(ctx)
    assert [(c.name, c.verdict) for c in ctx.checks] == [("line:both", Verdict.ERROR),
                                                         ("fault:rtpengine", Verdict.ERROR)]
    assert "network-namespace mode" in ctx.checks[0].detail and "a user's PBX" in ctx.checks[0].detail


# ---- the dialog of a forged BYE, from a party's pjsua log ----------------------------------------------
UAS_LOG = """\
09:26:08.982  pjsua_core.c  .RX 600 bytes Request msg INVITE/cseq=396 (rdata0x1) from UDP 10.233.0.2:46960:
INVITE sip:2001@10.233.0.1:53262;ob SIP/2.0
Record-Route: <sip:10.233.0.2:46960;lr;ftag=callertag>
Via: SIP/2.0/UDP 10.233.0.2:46960;branch=z9hG4bKf7b1
From: sip:1001@lab.local;tag=callertag
To: sip:2001@lab.local
Contact: <sip:1001@10.233.0.1:50098;ob>
Call-ID: abc123
CSeq: 396 INVITE
Content-Length:   0

--end msg--
09:26:08.983  pjsua_core.c  ......TX 500 bytes Response msg 200/INVITE/cseq=396 (tdta0x2) to UDP 10.233.0.2:46960:
SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.233.0.2:46960;branch=z9hG4bKf7b1
Record-Route: <sip:10.233.0.2:46960;lr;ftag=callertag>
Call-ID: abc123
From: sip:1001@lab.local;tag=callertag
To: sip:2001@lab.local;tag=agenttag
CSeq: 396 INVITE
Contact: <sip:2001@10.233.0.1:53262;ob>
Content-Length:   0

--end msg--
"""

UAC_LOG = """\
09:26:08.900  pjsua_core.c  ....TX 600 bytes Request msg INVITE/cseq=12 (tdta0x3) to UDP 10.233.0.2:46960:
INVITE sip:2001@lab.local SIP/2.0
Via: SIP/2.0/UDP 10.233.0.1:50098;rport;branch=z9hG4bKPj1
From: sip:1001@lab.local;tag=callertag
To: sip:2001@lab.local
Contact: <sip:1001@10.233.0.1:50098;ob>
Call-ID: abc123
CSeq: 12 INVITE
Content-Length:   0

--end msg--
09:26:08.990  pjsua_core.c  .RX 500 bytes Response msg 200/INVITE/cseq=12 (rdata0x4) from UDP 10.233.0.2:46960:
SIP/2.0 200 OK
Call-ID: abc123
From: sip:1001@lab.local;tag=callertag
To: sip:2001@lab.local;tag=agenttag
CSeq: 12 INVITE
Contact: <sip:2001@10.233.0.1:53262;ob>
Content-Length:   0

--end msg--
"""


def test_dialog_of_the_answering_end(tmp_path: Path) -> None:
    log = tmp_path / "agent.sip.log"
    log.write_text(UAS_LOG)
    d = dialog_from_log(read_messages(log, "agent"), "abc123")
    assert d is not None
    assert (d.local, d.remote) == ("sip:2001@lab.local;tag=agenttag", "sip:1001@lab.local;tag=callertag")
    assert d.contact == "sip:2001@10.233.0.1:53262;ob" and d.remote_cseq == 396
    assert dialog_from_log(read_messages(log, "agent"), "other-call") is None

    bye = parse(forged_bye(d, "10.233.0.1", 40000))
    assert (bye.method, bye.uri) == ("BYE", "sip:2001@10.233.0.1:53262;ob")
    assert bye.tag("From") == "callertag" and bye.tag("To") == "agenttag" and bye.call_id == "abc123"
    assert bye.cseq == (1396, "BYE") and "10.233.0.1:40000" in bye.header("Via")


def test_dialog_of_the_calling_end(tmp_path: Path) -> None:
    log = tmp_path / "caller.sip.log"
    log.write_text(UAC_LOG)
    d = dialog_from_log(read_messages(log, "caller"), "abc123")
    assert d is not None
    assert (d.local, d.remote) == ("sip:1001@lab.local;tag=callertag", "sip:2001@lab.local;tag=agenttag")
    assert d.contact == "sip:1001@10.233.0.1:50098;ob"
    bye = parse(forged_bye(d, "127.0.0.1", 5))
    assert bye.tag("From") == "agenttag" and bye.tag("To") == "callertag"


def test_no_dialog_before_an_answer(tmp_path: Path) -> None:
    log = tmp_path / "agent.sip.log"
    log.write_text(UAS_LOG.split("09:26:08.983")[0])
    assert dialog_from_log(read_messages(log, "agent"), "abc123") is None


class BoundParty:
    def __init__(self, sip_address: str, local_ip: str):
        self.name, self.sip_address, self.local_ip = "agent", sip_address, local_ip


def test_raw_sip_to_a_party_is_scoped_to_its_own_address() -> None:
    """A forged BYE goes through a probe session whose scope is the party's own SIP address on this machine
    (and its packet budget): nothing else is reachable through it."""
    scope, port = party_scope(BoundParty("10.233.0.1:53262", "10.233.0.1"))  # type: ignore[arg-type]
    assert (scope.addresses, port) == (("10.233.0.1",), 53262)
    assert scope.check("10.233.0.1") == "10.233.0.1"
    with pytest.raises(ProbeScopeError):
        scope.check("10.233.0.2")  # the lab behind the line: not this scope's
    with pytest.raises(ProbeScopeError):
        party_scope(BoundParty("192.0.2.7:5060", "10.233.0.1"))  # type: ignore[arg-type]
    with pytest.raises(ProbeScopeError):
        party_scope(BoundParty("phone.example:5060", "10.233.0.1"))  # type: ignore[arg-type]
