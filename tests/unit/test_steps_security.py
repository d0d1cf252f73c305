"""Security steps at load time, and their judgements from literal SIP answers: what is challenged,
refused, routed; every check carries severity and evidence. The brute-force judgement is tested in
test_probes_bruteforce.py, the toll-fraud classification in test_probes_tollfraud.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.contracts.errors import ScenarioError
from harness.contracts.sipmsg import parse
from harness.contracts.verdict import Verdict
from harness.probes.client import Exchange, Reply
from harness.probes.probe_uac import CallResult
from harness.probes.tollfraud import RefusalPolicy, classify
from harness.scenarios import load_scenario, load_suite
from harness.scenarios.steps_security import AuthEnforced
from harness.scenarios.steps_security_base import SEVERITIES, finding, security_check
from harness.scenarios.steps_security_tollfraud import TollFraud, _Probed

REPO = Path(__file__).resolve().parents[2]
AUTH_I, AUTH_G = security_check("auth", "i"), security_check("auth", "g")


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
    c = finding(security_check("auth", "x"), False, 200, "refused", "critical", "accepted", [3, 4], codes=[200])
    assert c.name == "security:auth:x" and c.verdict is Verdict.FAIL
    assert c.metrics == {"category": "security", "severity": "critical", "codes": [200],
                         "evidence": {"file": "probes-evidence.txt", "exchanges": [3, 4]}}
    assert SEVERITIES == ("info", "low", "medium", "high", "critical")
    with pytest.raises(ValueError):
        finding(security_check("x"), True, 1, 1, "severe")


def test_auth_calls_challenged_refused_or_routed() -> None:
    step = AuthEnforced(None, None, False, 1.0)
    challenge = call(invite_exchange(1, 1, "407 Proxy Authentication Required"))
    challenged = step._judge_call(AUTH_I, "critical", challenge, "sip:2001@x", guest=False)
    assert challenged.verdict is Verdict.PASS and challenged.value == 407
    not_found = step._judge_call(AUTH_I, "medium", call(invite_exchange(1, 1, "100 Trying", "404 Not Found")),
                                 "sip:2001@x", guest=True)
    assert not_found.verdict is Verdict.PASS and "is the callee registered" in not_found.detail
    answered = step._judge_call(AUTH_I, "medium", call(invite_exchange(1, 1, "180 Ringing", "200 OK"), answered=True),
                                "sip:2001@x", guest=True)
    assert answered.verdict is Verdict.FAIL and answered.value == "answered" and "torn down" in answered.detail
    assert answered.metrics["severity"] == "medium"
    silent = step._judge_call(AUTH_I, "critical", call(invite_exchange(1, 1)), "sip:2001@x", guest=False)
    assert silent.verdict is Verdict.ERROR  # nothing answered: nothing judged
    guests_ok = AuthEnforced(None, None, True, 1.0)._judge_call(
        AUTH_G, "info", call(invite_exchange(1, 1, "200 OK"), answered=True), "sip:2001@x", guest=True)
    assert guests_ok.verdict is Verdict.PASS


def test_auth_call_the_harness_had_to_cancel_is_not_refused() -> None:
    step = AuthEnforced(None, None, False, 3.0)
    kept = call(invite_exchange(1, 1, "100 Trying", "487 Request Terminated"))
    kept.cancelled = True
    c = step._judge_call(AUTH_I, "critical", kept, "sip:2001@x", guest=False)
    assert c.verdict is Verdict.FAIL and c.value == "not refused"
    assert "not challenged or refused within 3 s" in c.detail and "its 487 is no refusal" in c.detail


def test_toll_fraud_judges_each_format_and_never_passes_on_nothing() -> None:
    step = TollFraud(None, None, 3.0)
    policy = RefusalPolicy()
    rang = call(invite_exchange(1, 1, "183 Session Progress", "487 Request Terminated"))
    rang.cancelled = True
    got = _Probed([("00", "0044@x", c, classify(c, policy, authenticated=False, waited_s=3.0)) for c in
                   (call(invite_exchange(2, 1, "404 Not Found")), rang)])
    c = step._judge(security_check("toll_fraud", "unauthenticated"), "critical", got, authenticated=False)
    assert c.verdict is Verdict.FAIL and c.value == "routed" and "torn down at once" in c.detail
    assert c.threshold == "refused (401/407 challenge or 403/404/484/488/503/603)"
    assert [f["outcome"] for f in c.metrics["formats"]] == ["refused", "routed"]
    ok = call(invite_exchange(1, 1, "407 Proxy Authentication Required"), invite_exchange(2, 2, "403 Forbidden"),
              authenticated=True)
    passed = step._judge(security_check("toll_fraud", "authenticated"), "high", _Probed(
        [("+", "+44@x", ok, classify(ok, policy, authenticated=True, waited_s=3.0))]), authenticated=True)
    assert passed.verdict is Verdict.PASS and "407 challenge, then 403 Forbidden" in passed.detail
    cut = step._judge(security_check("toll_fraud", "authenticated"), "high", _Probed(
        [("+", "+44@x", ok, classify(ok, policy, authenticated=True, waited_s=3.0))],
        [("011", "the step's time bound of 40 s was reached")]), authenticated=True)
    assert cut.verdict is Verdict.ERROR and "1 more call not probed" in cut.detail  # never a PASS on what was not run


def test_new_parameters_load_and_are_checked(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, """
        - toll_fraud: {formats: ["00", "+"], refuse_codes: [403, 480], max_s: 20}
        - brute_force: {attempts: 6, confirm: 4, slowdown_min_ms: 50}
    """))
    toll, brute = (e.step for e in sc.steps)
    assert toll.formats == ("00", "+") and toll.policy.codes == (403, 480) and toll.max_s == 20
    assert brute.confirm == 4 and brute.limits.slowdown_min_ms == 50 and brute.attempts == 6
    for steps, message in (("- toll_fraud: {formats: [00]}", "write each format as a quoted string"),
                           ("- toll_fraud: {formats: ['8']}", "unknown dial format '8'"),
                           ("- toll_fraud: {refuse_codes: [180]}", "must be SIP final codes 300..699"),
                           ("- brute_force: {confirm: 1}", r"1 is out of range \[2, 5\]")):
        with pytest.raises(ScenarioError, match=message):
            load_scenario(write(tmp_path, steps))


def test_a_suite_sets_the_toll_fraud_refusal_policy_per_pbx(tmp_path: Path) -> None:
    suite = tmp_path / "my-pbx.yaml"
    shipped = REPO / "scenarios" / "security.yaml"
    suite.write_text(f"name: my-pbx\nscenarios:\n  - {{file: {shipped}, params: {{toll_refuse_codes: [403, 480]}}}}\n")
    (sc,) = load_suite(suite).scenarios
    toll = next(e.step for e in sc.steps if e.keyword == "toll_fraud")
    assert toll.policy.codes == (403, 480)
    default = next(e.step for e in load_scenario(shipped).steps if e.keyword == "toll_fraud")
    assert default.policy.codes == (403, 404, 484, 488, 503, 603) and default.formats == ("00", "+", "011", "9")


def test_a_target_profile_names_its_own_toll_refusals(tmp_path: Path) -> None:
    from harness.contracts.target import Target
    from harness.scenarios.context import RunContext

    profile = {"name": "pbx", "pbx": {"host": "127.0.0.1"}, "behaviour": {"toll_refuse_codes": [403, 480]},
               "accounts": {"caller": {"username": "1001", "password": "x"}}}
    target = Target.from_mapping(profile, "pbx.yaml")
    assert target.toll_refuse_codes == (403, 480)
    sc = load_scenario(write(tmp_path, "- toll_fraud: {}"))
    ctx = RunContext(sc, target, tmp_path)
    (entry,) = sc.steps
    assert entry.step.policy_for(ctx).codes == (403, 480)  # the profile's policy
    own = load_scenario(write(tmp_path, "- toll_fraud: {refuse_codes: [603]}")).steps[0].step
    assert own.policy_for(ctx).codes == (603,)  # the step's own wins
    with pytest.raises(Exception, match="toll_refuse_codes"):
        Target.from_mapping({**profile, "behaviour": {"toll_refuse_codes": [200]}}, "pbx.yaml")
