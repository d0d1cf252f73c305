"""Diagnosis rules fed literal SIP logs and results.json entries: each problem gets its own cause and fix,
and a rule stays silent on evidence that is not its kind of problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.checkname import CheckName
from harness.contracts.sdp import first_audio
from harness.contracts.siplog import mask_credentials, parsed_messages
from harness.findings.evidence import CheckView, Clues, collect_evidence
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import RULES, diagnose, rule

from .test_findings_support import (
    DIGEST,
    LAB_TARGET,
    check,
    main_call,
    register_log_text,
    request,
    response,
    rtp_stats,
    scenario,
    sdp,
    sip_log,
    write_logs,
)


def diag(tmp_path: Path, sc: dict[str, Any], name: str, logs: dict[str, str] | None = None,
         target: dict[str, Any] | None = None) -> Diagnosis:
    sdir = tmp_path / sc["out_dir"]
    write_logs(sdir, logs or {})
    chk = next(c for c in sc["checks"] if c["name"] == name)
    return diagnose(Clues(check=chk, scenario=sc, scenario_dir=sdir, target=target or LAB_TARGET))


# ---- signalling -------------------------------------------------------------------------------------
def test_wrong_password_is_an_auth_failure_naming_account_and_profile(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("register", subject="agent"), "FAIL", 401, 200, "SIP", "==")],
                  registrations={"agent": {"account": "agent1", "code": 401, "reason": "Unauthorized"}})
    target = {**LAB_TARGET, "is_lab": False, "source": "/etc/pbx.yaml", "name": "pbx"}
    d = diag(tmp_path, sc, "register:agent", {"agent": register_log_text(401, 401)}, target)
    assert d.rule == "auth_failure"
    assert "agent1" in d.cause and "2001" in d.cause and "again after" in d.cause
    assert "password" in d.fix and "/etc/pbx.yaml" in d.fix
    assert any("401 Unauthorized" in f for f in d.facts)


def test_forbidden_registration_is_not_called_a_wrong_password(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("register", subject="agent"), "FAIL", 403, 200, "SIP", "==")],
                  registrations={"agent": {"account": "agent1", "code": 403, "reason": "Forbidden"}})
    d = diag(tmp_path, sc, "register:agent", {"agent": register_log_text(401, 403)})
    assert d.rule == "auth_failure" and "403 Forbidden" in d.cause and "disabled" in d.cause


def test_silent_pbx_is_unreachable(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("register", subject="agent"), "FAIL", 408, 200, "SIP", "==")])
    log = sip_log(*[("TX", request("REGISTER", "sip:127.0.0.1:35060", "r", i)) for i in range(3)])
    d = diag(tmp_path, sc, "register:agent", {"agent": log})
    assert d.rule == "unreachable"
    assert "never answered" in d.cause and "127.0.0.1:35060/udp" in d.cause
    assert "harness lab status" in d.fix


def test_overloaded_pbx_503_on_register(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("register", subject="agent"), "FAIL", 503, 200, "SIP", "==")])
    d = diag(tmp_path, sc, "register:agent", {"agent": register_log_text(503)})
    assert d.rule == "unreachable" and "503" in d.cause


def invite_log(code: int, reason: str, *, ringing: bool = False) -> str:
    msgs = [("TX", request("INVITE", "sip:2002@lab.local", "cid-1", 1, sdp("127.0.0.1", 50000)))]
    if ringing:
        msgs.append(("RX", response(180, "Ringing", "INVITE", "cid-1", 1)))
    if code:
        msgs.append(("RX", response(code, reason, "INVITE", "cid-1", 1)))
    return sip_log(*msgs)


def test_not_registered_callee_404(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("call", call="main"), "FAIL", 404, "answer", "SIP", detail="ended with 404")],
                  calls={"main": main_call(callee=None, uri="sip:2002@lab.local", final_code=404, answered=False)},
                  parties=("caller",))
    d = diag(tmp_path, sc, "call:main", {"caller": invite_log(404, "Not Found")})
    assert d.rule == "call_refused"
    assert d.cause.startswith("404") and "sip:2002@lab.local" in d.cause and "logged in" in d.cause
    assert "register" in d.fix


def test_404_for_a_registered_party_points_at_the_number(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("call", call="main"),
                         "FAIL", 404, "answer", "SIP")], calls={"main": main_call(final_code=404)},
                  registrations={"agent": {"account": "agent1", "code": 200, "reason": "OK"}})
    d = diag(tmp_path, sc, "call:main", {"caller": invite_log(404, "Not Found")})
    assert "registered (200)" in d.cause and "numbers" in d.fix


@pytest.mark.parametrize(("code", "reason", "words"), [
    (486, "Busy Here", "busy"), (480, "Temporarily Unavailable", "temporarily unavailable"),
    (603, "Decline", "declined"), (488, "Not Acceptable Here", "codec"), (403, "Forbidden", "forbids")])
def test_busy_and_unavailable_name_the_sip_code(tmp_path: Path, code: int, reason: str, words: str) -> None:
    sc = scenario([check(CheckName("call", call="main"),
                         "FAIL", code, "answer", "SIP")], calls={"main": main_call(final_code=code)})
    d = diag(tmp_path, sc, "call:main", {"caller": invite_log(code, reason)})
    assert d.rule == "call_refused"
    assert d.cause.startswith(str(code)) and words in d.cause
    assert any(f"{code} {reason}" in f for f in d.facts)


def test_ringing_without_answer(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("call", call="main"),
                         "FAIL", "no answer", "answer", detail="no final response within 15.0 s")],
                  calls={"main": main_call(final_code=None, answered=False)})
    d = diag(tmp_path, sc, "call:main", {"caller": invite_log(0, "", ringing=True)})
    assert d.rule == "no_answer" and "rang (180 Ringing)" in d.cause


@pytest.mark.parametrize(("timings", "value", "words"), [
    ({"invite_to_provisional_ms": 5.0, "invite_to_180_ms": 10.0}, 3000.0, "answered late"),
    ({"invite_to_provisional_ms": 2500.0, "invite_to_180_ms": 2600.0}, 3000.0, "slow routing"),
    ({"invite_to_provisional_ms": None, "invite_to_180_ms": None}, None, "not answered")])
def test_slow_setup_says_where_the_time_went(tmp_path: Path, timings: dict[str, Any], value: float | None,
                                             words: str) -> None:
    sc = scenario([check(CheckName("setup_time", call="main"),
                         "FAIL" if value else "ERROR", value, 2000.0, "ms", "<=")],
                  calls={"main": main_call(setup_ms=value, **timings)})
    d = diag(tmp_path, sc, "setup_time:main", {"caller": invite_log(200, "OK")})
    assert d.rule == "slow_setup" and words in d.cause


def test_call_not_released(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("hangup", call="main"),
                         "FAIL", None, "both ends released", "ms", detail="still up at: agent")],
                  calls={"main": main_call()})
    d = diag(tmp_path, sc, "hangup:main")
    assert d.rule == "call_not_released" and "BYE" in d.cause


def test_crashed_party_is_a_harness_fault(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("step", subject="step 2 (talk)"),
                         "ERROR", None, detail="party agent: died (SIGABRT)")],
                  error={"step": "step 2 (talk)", "kind": "PartyCrashed", "message": "party agent: died (SIGABRT)",
                         "log_tail": "assertion failed"})
    d = diag(tmp_path, sc, "step:step 2 (talk)")
    assert d.rule == "harness_fault" and "not the PBX" in d.cause


# ---- media ------------------------------------------------------------------------------------------
def one_way_logs(agent_addr: str = "127.0.0.1", agent_port: int = 52000, relay: str = "127.0.0.1",
                 caller_dir: str = "sendrecv") -> dict[str, str]:
    caller = sip_log(("TX", request("INVITE", "sip:2001@lab.local", "cid-1", 1, sdp("127.0.0.1", 50000))),
                     ("RX", response(200, "OK", "INVITE", "cid-1", 1, sdp(relay, 42310, caller_dir))))
    agent = sip_log(("RX", request("INVITE", "sip:2001@127.0.0.1:5080", "cid-1", 1, sdp(relay, 42300))),
                    ("TX", response(200, "OK", "INVITE", "cid-1", 1, sdp(agent_addr, agent_port))))
    return {"caller": caller, "agent": agent}


def one_way_scenario(caller_tx: int, agent_rx: int, remote: str = "127.0.0.1:42310") -> dict[str, Any]:
    return scenario(
        [check(CheckName("audio", direction=("caller", "agent"), metric="audio_present"),
               "FAIL", -120.0, -60.0, "dBov", ">=",
               "one-way audio: the listener sends audio but receives none"),
         check(CheckName("audio", direction=("agent", "caller"), metric="audio_present"),
               "PASS", -26.0, -60.0, "dBov", ">=")],
        calls={"main": main_call()},
        rtp={"main": {"caller": rtp_stats(150, caller_tx, remote), "agent": rtp_stats(agent_rx, 150,
                                                                                       "127.0.0.1:42300")}})


def test_one_way_rtp_never_arrived_through_the_relay(tmp_path: Path) -> None:
    d = diag(tmp_path, one_way_scenario(150, 0), "audio:caller->agent:audio_present", one_way_logs())
    assert d.rule == "one_way_audio"
    assert "RTP never arrived at agent" in d.cause and "relay at 127.0.0.1:42310" in d.cause
    assert "127.0.0.1:52000" in d.cause  # the address the agent asked for, from its SDP
    assert any("agent's SDP asks for RTP at 127.0.0.1:52000" in f for f in d.facts)
    assert any("caller sent 150 RTP packets to 127.0.0.1:42310" in f for f in d.facts)
    assert any("agent received 0 RTP packets" in f for f in d.facts)


def test_one_way_behind_nat_names_the_private_address(tmp_path: Path) -> None:
    logs = one_way_logs(agent_addr="192.168.1.20", relay="203.0.113.5")
    d = diag(tmp_path, one_way_scenario(150, 0, "203.0.113.5:42310"), "audio:caller->agent:audio_present", logs)
    assert "private address 192.168.1.20" in d.cause and "NAT" in d.cause
    assert "comedia" in d.fix or "STUN" in d.fix


def test_one_way_sender_told_not_to_send(tmp_path: Path) -> None:
    d = diag(tmp_path, one_way_scenario(0, 0), "audio:caller->agent:audio_present",
             one_way_logs(caller_dir="inactive"))
    assert "caller never sent RTP" in d.cause and "'inactive'" in d.cause


def test_one_way_rtp_arrived_but_silent(tmp_path: Path) -> None:
    d = diag(tmp_path, one_way_scenario(150, 150), "audio:caller->agent:audio_present", one_way_logs())
    assert d.rule == "one_way_audio" and "carried silence" in d.cause and "microphone" in d.cause


def test_no_audio_in_either_direction(tmp_path: Path) -> None:
    sc = scenario(
        [check(CheckName("audio", direction=("caller", "agent"), metric="audio_present"),
               "FAIL", -120.0, -60.0, "dBov", ">="),
         check(CheckName("audio", direction=("agent", "caller"), metric="audio_present"),
               "FAIL", -120.0, -60.0, "dBov", ">=")],
        calls={"main": main_call()},
        rtp={"main": {"caller": rtp_stats(0, 150, "127.0.0.1:42310"), "agent": rtp_stats(0, 150, "127.0.0.1:42300")}})
    d = diag(tmp_path, sc, "audio:agent->caller:audio_present", one_way_logs())
    assert d.rule == "no_audio_both_ways" and "either direction" in d.cause and "relay" in d.fix


def test_wrong_audio(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("audio", direction=("caller", "agent"), metric="reference_match"),
                         "FAIL", 0.12, 0.5, "", ">=")],
                  calls={"main": main_call()})
    d = diag(tmp_path, sc, "audio:caller->agent:reference_match")
    assert d.rule == "wrong_audio" and "not what caller played" in d.cause


@pytest.mark.parametrize(("stats", "words"), [({"rx_lost": 15, "rx_packets": 135}, "10.0 % packet loss"),
                                              ({"rx_jitter_ms": 45.0}, "45.0 ms jitter")])
def test_loss_and_jitter_from_rtp_stats(tmp_path: Path, stats: dict[str, Any], words: str) -> None:
    sc = scenario([check(CheckName("audio", direction=("caller", "agent"), metric="mos"),
                         "FAIL", 2.1, 3.5, "MOS-LQO", ">=")],
                  calls={"main": main_call()},
                  rtp={"main": {"agent": rtp_stats(150, 150, "127.0.0.1:42300", **stats)}})
    d = diag(tmp_path, sc, "audio:caller->agent:mos")
    assert d.rule == "loss_or_jitter" and words in d.cause and "QoS" in d.fix


@pytest.mark.parametrize(("part", "value", "words"), [
    ("noise_floor", -38.0, "noise on the line"), ("snr", 12.0, "noise"), ("echo", 18.0, "echo"),
    ("clipping", 2.5, "clipped"), ("gain", 9.0, "level changed"), ("speech_level", -42.0, "too quiet"),
    ("level_stability", 8.0, "swings"), ("dropouts", 3.0, "gaps"), ("delay", 600.0, "delay"),
    ("delay_variation", 140.0, "jumped")])
def test_audio_engine_checks_have_plain_causes(tmp_path: Path, part: str, value: float, words: str) -> None:
    sc = scenario([check(CheckName("audio", direction=("caller", "agent"), metric=part), "FAIL", value, 1.0)],
                  calls={"main": main_call()},
                  rtp={"main": {"agent": rtp_stats(150, 150, "127.0.0.1:42300")}},
                  audio={"caller->agent": {"duration_s": 9.0, "dropouts": [{"start_s": 2.0, "duration_ms": 80.0}]}})
    d = diag(tmp_path, sc, f"audio:caller->agent:{part}")
    assert d.rule == "audio_quality" and words in d.cause and "caller->agent" in d.cause
    assert str(value) in d.cause


def test_dropouts_after_the_call_ended_are_the_scenario_not_the_line(tmp_path: Path) -> None:
    drops = [{"start_s": 2.99, "end_s": 3.17, "duration_ms": 180.0},
             {"start_s": 4.0, "end_s": 4.5, "duration_ms": 500.0}]
    sc = scenario([check(CheckName("audio", direction=("caller", "agent"), metric="dropouts"),
                         "FAIL", 2.0, 0.0, "events", "<=")],
                  calls={"main": main_call()}, rtp={"main": {"agent": rtp_stats(150, 150, "x")}},
                  audio={"caller->agent": {"duration_s": 3.0, "dropouts": drops}})
    d = diag(tmp_path, sc, "audio:caller->agent:dropouts")
    assert d.rule == "reference_longer_than_call" and "talk step" in d.fix and "3.0 s" in d.cause


def test_low_mos_explained_by_another_failing_check(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("audio", direction=("caller", "agent"), metric="noise_floor"),
                         "FAIL", -35.0, -50.0, "dBov", "<="),
                   check(CheckName("audio", direction=("caller", "agent"), metric="mos"),
                         "FAIL", 2.4, 3.5, "MOS-LQO", ">=")],
                  calls={"main": main_call()}, rtp={"main": {"agent": rtp_stats(150, 150, "x")}})
    d = diag(tmp_path, sc, "audio:caller->agent:mos")
    assert d.rule == "low_mos_explained" and "MOS 2.4 is low because noise on the line" in d.cause


# ---- transfer and recording -------------------------------------------------------------------------
def refer_log(refer_code: int, notify: str | None) -> str:
    msgs = [("TX", request("REFER", "sip:1001@127.0.0.1:5070", "cid-1", 5, extra="Refer-To: <sip:2002@lab.local>\n")),
            ("RX", response(refer_code, {202: "Accepted", 603: "Decline", 405: "Method Not Allowed"}[refer_code],
                            "REFER", "cid-1", 5))]
    if notify is not None:
        body = f"SIP/2.0 {notify}\r\n"
        msgs.append(("RX", request("NOTIFY", "sip:2001@127.0.0.1:5080", "cid-1", 6,
                                   extra="Event: refer\nContent-Type: message/sipfrag;version=2.0\n").replace(
            "Content-Length: 0\n\n", f"Content-Length: {len(body)}\n\n{body}")))
    return sip_log(*msgs)


@pytest.mark.parametrize(("code", "notify", "value", "words"), [
    (603, None, 603, "REFER was rejected with 603 Decline"), (405, None, None, "rejected with 405"),
    (202, "486 Busy Here", 486, "answered 486 Busy Here"), (202, "100 Trying", None, "never completed")])
def test_transfer_failures(tmp_path: Path, code: int, notify: str | None, value: int | None, words: str) -> None:
    sc = scenario([check(CheckName("transfer", call="main", metric="notify"),
                         "FAIL", value, 200, "SIP", "==", "transfer not completed")],
                  calls={"main": main_call()})
    d = diag(tmp_path, sc, "transfer:main:notify", {"agent": refer_log(code, notify), "caller": sip_log()})
    assert d.rule == "transfer_failed" and words in d.cause


@pytest.mark.parametrize(("part", "value", "words"), [
    ("notify", 480, "answered 480"), ("time", 4200.0, "took 4200.0 ms"), ("recovered", "dropped", "lost the call"),
    ("released", 1, "left calls up"), ("outcome", "final NOTIFY 200", "expected to fail")])
def test_transfer_checks_without_sip_logs(tmp_path: Path, part: str, value: Any, words: str) -> None:
    sc = scenario([check(CheckName("transfer", call="main", metric=part), "FAIL", value, 0,
                         detail="still up: agent (c1)")],
                  calls={"main": main_call()})
    d = diag(tmp_path, sc, f"transfer:main:{part}")
    assert d.rule == "transfer_failed" and words in d.cause


def recording(metric: str, direction: tuple[str, str] | None = None) -> CheckName:
    return CheckName("recording", call="main", direction=direction, metric=metric)


@pytest.mark.parametrize(("cid", "value", "detail", "rule_name", "words"), [
    (recording("found"), None, "no recording for Call-ID cid-1 in rec/pcaps after 5 s", "recording_problem",
     "not found"),
    (recording("duration"), 5.9, "recording 3.10 s, call 9.0 s", "recording_problem", "incomplete"),
    (recording("audio_present", ("caller", "agent")), -120.0, "no audio received", "recording_problem", "one-sided"),
    (recording("alignment"), 480.0, "", "recording_problem", "480.0 ms apart"),
    (recording("dropouts", ("caller", "agent")), 4.0, "", "audio_quality", "caller->agent in the PBX's recording")])
def test_recording_problems(tmp_path: Path, cid: CheckName, value: Any, detail: str, rule_name: str,
                            words: str) -> None:
    sc = scenario([check(cid, "FAIL", value, 1.0, detail=detail)], calls={"main": main_call()})
    d = diag(tmp_path, sc, str(cid))
    assert d.rule == rule_name and words in d.cause


def test_checks_of_a_labelled_call_use_that_calls_figures(tmp_path: Path) -> None:
    transferred = main_call(caller="caller", callee="agent_b", sip_call_id="cid-9")
    back, there = CheckName("audio", call="transferred", direction=("agent_b", "caller")), \
        CheckName("audio", call="transferred", direction=("caller", "agent_b"))
    sc = scenario([check(back.with_metric("audio_present"), "FAIL", -120.0, -60.0, "dBov", ">="),
                   check(there.with_metric("audio_present"), "PASS", -26.0, -60.0, "dBov", ">="),
                   check(back.with_metric("echo"), "FAIL", 31.0, 40.0, "dB", ">=")],
                  calls={"main": main_call(), "transferred": transferred},
                  rtp={"transferred": {"caller": rtp_stats(0, 150, "127.0.0.1:42330"),
                                       "agent_b": rtp_stats(150, 150, "127.0.0.1:42320")}})
    d = diag(tmp_path, sc, "audio:transferred:agent_b->caller:audio_present")
    assert d.rule == "one_way_audio" and "RTP never arrived at caller" in d.cause
    d = diag(tmp_path, sc, "audio:transferred:agent_b->caller:echo")
    assert d.rule == "audio_quality" and "echo agent_b->caller" in d.cause


def test_rtp_reachability_check_gets_the_media_path_analysis(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("rtp", direction=("caller", "agent")), "FAIL", 0.0, 25.0, "packets", ">="),
                   check(CheckName("rtp", direction=("agent", "caller")), "PASS", 150.0, 25.0, "packets", ">=")],
                  calls={"main": main_call()},
                  rtp={"main": {"caller": rtp_stats(150, 150, "127.0.0.1:42310"),
                                "agent": rtp_stats(0, 150, "127.0.0.1:42300")}})
    d = diag(tmp_path, sc, "rtp:caller->agent", one_way_logs())
    assert d.rule == "one_way_audio" and "RTP never arrived at agent" in d.cause


def test_unknown_check_gets_a_generic_diagnosis_that_says_so(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("dtmf", subject="agent", call="main", subject_first=True),
                         "FAIL", "12", "123", "digits", "==")], calls={"main": main_call()})
    d = diag(tmp_path, sc, "dtmf:agent:main")
    assert d.rule == "generic" and d.confidence == "possible"
    assert "measured 12 digits" in d.cause and "harness findings note" in d.fix


# ---- registry, SIP log reading, evidence ------------------------------------------------------------
def test_rules_are_a_registry_in_order() -> None:
    diagnose(Clues(check=check(CheckName("x"), "FAIL", 1), scenario=scenario([])))  # loads every rule module
    names = [r.name for r in RULES]
    for expected in ("auth_failure", "unreachable", "call_refused", "one_way_audio", "no_audio_both_ways",
                     "loss_or_jitter", "audio_quality", "slow_setup", "transfer_failed", "recording_problem"):
        assert expected in names
    assert [r.order for r in RULES] == sorted(r.order for r in RULES)
    with pytest.raises(ValueError, match="registered twice"):
        rule("auth_failure", kinds=("x",))(lambda c: None)


def test_check_views_come_from_the_typed_id() -> None:
    def view(cid: CheckName) -> CheckView:
        return CheckView.of({"name": str(cid), "id": cid.to_dict()})

    n = view(CheckName("audio", direction=("caller", "agent"), metric="mos"))
    assert (n.kind, n.subject, n.part, n.direction) == ("audio", "caller->agent", "mos", ("caller", "agent"))
    assert view(CheckName("register", subject="agent")).direction is None
    n = view(CheckName("audio", call="transferred", direction=("agent_b", "caller"), metric="echo"))
    assert (n.scope, n.subject, n.part, n.audio_key) == ("transferred", "agent_b->caller", "echo",
                                                         "audio:transferred:agent_b->caller")
    assert n.sibling("caller->agent_b", "audio_present") == "audio:transferred:caller->agent_b:audio_present"
    n = view(CheckName("transfer", call="main", metric="notify"))
    assert (n.kind, n.subject, n.part, n.scope, n.direction) == ("transfer", "main", "notify", "", None)
    assert view(CheckName("recording", call="main", direction=("caller", "agent"), metric="mos")).audio_key == \
        "recording:main:caller->agent"
    n = view(CheckName("dtmf", subject="agent", call="main", subject_first=True))
    assert (n.kind, n.subject, n.call, n.party) == ("dtmf", "main", "main", "agent")
    n = view(CheckName("audio", subject="echo", direction=("caller", "caller"), metric="erle"))
    assert (n.scope, n.audio_key, n.sibling("caller->caller", "mos")) == (
        "echo", "audio:echo:caller->caller", "audio:echo:caller->caller:mos")


def test_a_check_without_an_id_is_not_taken_apart(tmp_path: Path) -> None:
    """A results.json from before checks carried an ``id``: the name text is the kind, nothing else is
    known, so only the generic diagnosis applies (no rule guesses from the text)."""
    n = CheckView.of({"name": "recording:main:found"})
    assert (n.kind, n.subject, n.part, n.scope, n.direction, n.id) == ("recording:main:found", "", "", "", None, None)
    old = {**check(CheckName("register", subject="agent"), "FAIL", 401, 200, "SIP", "=="), "id": None}
    sc = scenario([old], registrations={"agent": {"account": "agent1", "code": 401, "reason": "Unauthorized"}})
    d = diag(tmp_path, sc, "register:agent", {"agent": register_log_text(401, 401)})
    assert d.rule == "generic" and "register:agent FAIL: measured 401 SIP" in d.cause
    rec = {**check(CheckName("recording", call="main", metric="found"), "FAIL", None, 1.0,
                   detail="no recording for Call-ID cid-1"), "id": None}
    assert diag(tmp_path, scenario([rec]), "recording:main:found").rule == "generic"


def test_sip_log_reading_and_sdp(tmp_path: Path) -> None:
    p = tmp_path / "a.sip.log"
    p.write_text(one_way_logs()["agent"] + "08:00:09.000  pjsua_core.c  .TX 10 bytes Request msg BYE/cseq=1 (x) "
                                            "to UDP 127.0.0.1:35060:\nBYE sip:x SIP/2.0\n")  # torn at the end
    msgs = parsed_messages(p)
    assert [m.direction for m in msgs] == ["RX", "TX"] and msgs[1].msg.status == 200
    media = first_audio(msgs[1].msg.body)
    assert media is not None and (media.address, media.port, media.direction) == ("127.0.0.1", 52000, "sendrecv")
    assert media.codecs == ("PCMU",)
    assert parsed_messages(tmp_path / "missing.log") == []
    assert first_audio(b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 4000 RTP/AVP 96\r\n") is None


def test_credentials_are_masked_in_evidence(tmp_path: Path) -> None:
    masked = mask_credentials(f"Proxy-Authorization: {DIGEST}\nTo: x")
    assert masked.startswith("Proxy-Authorization: Digest ") and masked.endswith("\nTo: x")
    assert 'response="***"' in masked and 'nonce="***"' in masked and "6629fae4" not in masked
    sc = scenario([check(CheckName("register", subject="agent"), "FAIL", 401, 200, "SIP", "==")],
                  registrations={"agent": {"account": "agent1", "code": 401, "reason": "Unauthorized"}})
    log = sip_log(("TX", request("REGISTER", "sip:x", "r", 1, extra=f"Authorization: {DIGEST}\n")),
                  ("RX", response(403, "Forbidden", "REGISTER", "r", 1)),
                  ("TX", request("REGISTER", "sip:x", "r", 2, extra=f"Authorization: {DIGEST}\n")))
    write_logs(tmp_path / "connect", {"agent": log})
    ev = collect_evidence(Clues(check=sc["checks"][0], scenario=sc, scenario_dir=tmp_path / "connect",
                                target=LAB_TARGET))
    text = json.dumps(ev)
    assert "6629fae4" not in text and "nonce" not in text
    assert "403 Forbidden" in ev["key_message"]
    assert ev["files"] == {"log:agent": "agent.log", "sip_log:agent": "agent.sip.log"}
    assert ev["metrics"]["registration"]["code"] == 401
    assert ev["sip"]["agent"][1].endswith("<- SIP/2.0 403 Forbidden (REGISTER, from 127.0.0.1:35060)")


def test_echo_not_measurable_because_the_listener_is_silent(tmp_path: Path) -> None:
    sc = scenario([check(CheckName("audio", direction=("caller", "agent"), metric="echo"), "ERROR", None, 40.0, "dB",
                         detail="echo not measurable: the sent signal is silent or too short"),
                   check(CheckName("audio", direction=("agent", "caller"), metric="audio_present"),
                         "FAIL", -120.0, -60.0, "dBov", ">=")],
                  calls={"main": main_call()})
    d = diag(tmp_path, sc, "audio:caller->agent:echo")
    assert d.rule == "audio_not_measured" and "agent sends no audio" in d.cause and d.confidence == "likely"
    sc = scenario([check(CheckName("audio", direction=("caller", "agent")),
                         "ERROR", None, detail="agent made no recording (agent-c1.wav)")],
                  calls={"main": main_call()})
    d = diag(tmp_path, sc, "audio:caller->agent")
    assert d.rule == "audio_not_measured" and "could not be judged at all" in d.cause


# ---- the audio engine's newer checks ----------------------------------------------------------------------
def test_coverage_tells_media_that_stopped_from_a_short_recording(tmp_path: Path) -> None:
    stopped = check(CheckName("audio", direction=("caller", "agent"), metric="coverage"), "FAIL", 61.0, 95.0, "%", ">=",
                    "media stopped: the received went silent at 4.10 s of the reference")
    stopped["metrics"] = {"diagnosis": ["media_stopped"]}
    d = diag(tmp_path, scenario([stopped]), "audio:caller->agent:coverage")
    assert d.rule == "coverage_missing" and d.cause.startswith("the audio caller->agent stopped while the call")
    assert "RTP timeout" in d.fix and "media_stopped" in d.facts
    late = {**stopped, "metrics": {"diagnosis": ["media_started_late"]}, "detail": "audio is heard from 2.3 s"}
    d = diag(tmp_path, scenario([late]), "audio:caller->agent:coverage")
    assert d.cause.startswith("media started late caller->agent")


def test_band_limited_audio_and_an_impossible_delay(tmp_path: Path) -> None:
    muffled = check(CheckName("audio", direction=("agent", "caller"), metric="bandwidth"),
                    "FAIL", 1500.0, 3000.0, "Hz", ">=", "reaches 1500 Hz")
    d = diag(tmp_path, scenario([muffled]), "audio:agent->caller:bandwidth")
    assert d.rule == "audio_quality" and "band-limited" in d.cause and "1500.0 Hz" in d.cause
    early = check(CheckName("audio", direction=("agent", "caller"), metric="delay"),
                  "FAIL", -240.0, -30.0, "ms", ">=", "received leads by 240 ms")
    d = diag(tmp_path, scenario([early]), "audio:agent->caller:delay")
    assert d.rule == "impossible_delay" and "leads the reference by 240 ms" in d.cause
