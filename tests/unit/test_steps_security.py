"""Security steps at load time, and their judgements from literal SIP answers: what is challenged,
refused, routed; what a brute-force run observed; every check carries severity and evidence."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.probes.client import Exchange, Reply
from harness.probes.uac import CallResult
from harness.scenarios import load_scenario
from harness.scenarios.steps_security import SEVERITIES, AuthEnforced, BruteForce, TollFraud, finding
from harness.sipmsg import parse
from harness.target import Account, Secret
from harness.verdict import Verdict

REPO = Path(__file__).resolve().parents[2]
ACC = Account("caller", "1001", Secret("pw"), "1001")


def invite_exchange(ref: int, cseq: int, *statuses: str) -> Exchange:
    ex = Exchange(ref=ref, request=b"INVITE ...", call_id="c1", cseq=(cseq, "INVITE"))
    for i, st in enumerate(statuses):
        raw = (f"SIP/2.0 {st}\r\nCall-ID: c1\r\nCSeq: {cseq} INVITE\r\nContent-Length: 0\r\n\r\n").encode()
        ex.replies.append(Reply(1.0 + i, parse(raw), raw))
    return ex


def call(*exchanges: Exchange, answered: bool = False, authenticated: bool = False) -> CallResult:
    c = CallResult(list(exchanges), authenticated=authenticated)
    if answered:
        last = exchanges[-1].final
        assert last is not None
        c.answer = last.msg
    return c


def write(tmp_path: Path, steps: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text("name: s\nsteps:\n" + textwrap.indent(textwrap.dedent(steps).strip(), "  ") + "\n")
    return p


def test_shipped_security_suite_loads_with_brute_force_last() -> None:
    sc = load_scenario(REPO / "scenarios" / "security.yaml")
    kinds = [e.keyword for e in sc.steps]
    assert kinds[-1] == "brute_force"
    for k in ("auth_enforced", "toll_fraud", "enumeration", "header_leakage", "transport_security", "robustness",
              "weak_passwords"):
        assert k in kinds
    assert sc.timeout_s <= 90


@pytest.mark.parametrize(("steps", "message"), [
    ("- enumeration: {methods: [REGISTER, BYE]}", "steps[0].enumeration.methods: unknown method 'BYE'"),
    ("- brute_force: {attempts: 500}", "steps[0].brute_force.attempts: 500 is out of range [2, 50]"),
    ("- robustness: {probes: [missing_via, segfault]}", "steps[0].robustness.probes: unknown probe 'segfault'"),
    ("- transport_security: {tls: mandatory}", "steps[0].transport_security.tls: must be one of required, offered"),
    ("- auth_enforced: {allow_guest_calls: maybe}", "steps[0].auth_enforced.allow_guest_calls: must be true or false"),
])
def test_bad_parameters_name_file_line_and_field(tmp_path: Path, steps: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, steps))
    assert message in str(err.value) and "s.yaml:3" in str(err.value)


def test_finding_carries_severity_category_and_evidence() -> None:
    c = finding("auth:x", False, 200, "refused", "critical", "accepted", [3, 4], codes=[200])
    assert c.name == "security:auth:x" and c.verdict is Verdict.FAIL
    assert c.metrics == {"category": "security", "severity": "critical", "codes": [200],
                         "evidence": {"file": "probes-evidence.txt", "exchanges": [3, 4]}}
    assert SEVERITIES == ("info", "low", "medium", "high", "critical")
    with pytest.raises(ValueError):
        finding("x", True, 1, 1, "severe")


def test_auth_calls_challenged_refused_or_routed() -> None:
    step = AuthEnforced(None, None, False, 1.0)
    challenge = call(invite_exchange(1, 1, "407 Proxy Authentication Required"))
    challenged = step._judge_call("auth:i", "critical", challenge, "sip:2001@x", guest=False)
    assert challenged.verdict is Verdict.PASS and challenged.value == 407
    not_found = step._judge_call("auth:i", "medium", call(invite_exchange(1, 1, "100 Trying", "404 Not Found")),
                                 "sip:2001@x", guest=True)
    assert not_found.verdict is Verdict.PASS and "is the callee registered" in not_found.detail
    answered = step._judge_call("auth:i", "medium", call(invite_exchange(1, 1, "180 Ringing", "200 OK"), answered=True),
                                "sip:2001@x", guest=True)
    assert answered.verdict is Verdict.FAIL and answered.value == "answered" and "torn down" in answered.detail
    assert answered.metrics["severity"] == "medium"
    silent = step._judge_call("auth:i", "critical", call(invite_exchange(1, 1)), "sip:2001@x", guest=False)
    assert silent.verdict is Verdict.ERROR  # nothing answered: nothing judged
    guests_ok = AuthEnforced(None, None, True, 1.0)._judge_call(
        "auth:g", "info", call(invite_exchange(1, 1, "200 OK"), answered=True), "sip:2001@x", guest=True)
    assert guests_ok.verdict is Verdict.PASS


def test_toll_fraud_ringing_is_already_routed() -> None:
    step = TollFraud(None, None, 1.0)
    rang = call(invite_exchange(1, 1, "183 Session Progress", "487 Request Terminated"))
    rang.cancelled = True
    c = step._judge("toll_fraud:unauthenticated", "critical", [call(invite_exchange(2, 1, "404 Not Found")), rang],
                    "sip:0044@x")
    assert c.verdict is Verdict.FAIL and c.value == "routed" and "after ringing" in c.detail
    ok = step._judge("toll_fraud:authenticated", "high",
                     [call(invite_exchange(1, 1, "407 Proxy Authentication Required"),
                           invite_exchange(2, 2, "403 Forbidden"), authenticated=True)], "sip:0044@x")
    assert ok.verdict is Verdict.PASS and "407 challenge, then 403 Forbidden" in ok.detail


def test_brute_force_observations() -> None:
    step = BruteForce(None, 10, 3.0, 1.0)
    none = step._judge(ACC, [0.3] * 10, None, "", 200, 0.05, [1], "127.9.9.9")
    assert none.verdict is Verdict.FAIL and none.value == "none" and none.metrics["severity"] == "high"
    assert "the right password was still accepted" in none.detail
    blocked = step._judge(ACC, [0.3] * 5, 6, "no answer (dropped)", None, 3.0, [1], "127.9.9.9")
    assert blocked.verdict is Verdict.PASS and blocked.value == "blocked after 5 wrong passwords"
    slowed = step._judge(ACC, [1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0], None, "", 200, 1.0, [1], None)
    assert slowed.verdict is Verdict.PASS and slowed.value == "slowed x16.0"
    locked = step._judge(ACC, [0.3] * 10, None, "", 403, 0.1, [1], None)
    assert locked.verdict is Verdict.PASS and locked.value == "account locked"
    accepted = step._judge(ACC, [0.3], None, "a wrong password was ACCEPTED", 200, 0.1, [1], None)
    assert accepted.verdict is Verdict.FAIL and accepted.value == "wrong password accepted"
