"""Diagnosis rules for the injected faults, fed literal results.json entries and pjsua SIP logs shaped as
the fault suite produces them: media that stopped on a call that stayed up (``media_stopped``), an end
of a call dropped by a BYE (``call_dropped``), and a registration the PBX lost in a restart or let expire
(``registration_lost``). Each rule fires on its evidence and keeps out of the neighbouring cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.contracts.checkname import CheckName
from harness.findings.evidence import Clues
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import diagnose

from .test_findings_support import LAB_TARGET, check, main_call, request, response, rtp_stats, scenario, write_logs

PBX = "127.0.0.1:35060"  #: LAB_TARGET's address, as the SIP logs name the peer


def pjsua_log(*entries: tuple[str, str, str, str]) -> str:
    """A pjsua level-4 log: (clock HH:MM:SS.mmm, TX|RX, peer ip:port, message text) in order."""
    out = ["08:00:00.000         sip_endpoint.c  .Module \"mod-ua\" registered"]
    for clock, direction, peer, text in entries:
        first = text.splitlines()[0]
        kind = "Response" if first.startswith("SIP/2.0") else "Request"
        label = first.split()[1] if kind == "Response" else first.split()[0]
        way = "to" if direction == "TX" else "from"
        out += [f"{clock}           pjsua_core.c  ...{direction} {len(text)} bytes {kind} msg {label}/cseq=1 "
                f"(tdta0x1) {way} UDP {peer}:", text.rstrip("\n"), "", "--end msg--"]
    return "\n".join(out) + "\n"


def diag(tmp_path: Path, sc: dict[str, Any], name: str, logs: dict[str, str] | None = None) -> Diagnosis:
    sdir = tmp_path / sc["out_dir"]
    write_logs(sdir, logs or {})
    chk = next(c for c in sc["checks"] if c["name"] == name)
    return diagnose(Clues(check=chk, scenario=sc, scenario_dir=sdir, target=LAB_TARGET))


# ---- media_stopped ----------------------------------------------------------------------------------
CONNECTED = check(CheckName("call", call="main", metric="connected"),
                  "PASS", "connected", "connected", detail="both ends CONFIRMED for 2 s")
DROPPED = check(CheckName("call", call="main", metric="connected"), "FAIL", "dropped", "connected",
                detail=f"agent received a BYE from 127.0.0.9:36676, which is not the PBX ({PBX}): a BYE from "
                       "nowhere; still up at caller")
KILL = check(CheckName("fault", subject="rtpengine"), "PASS", "kill", "kill", detail="killed rtpengine (pid 12794)")
START = check(CheckName("fault", subject="rtpengine"),
              "PASS", "start", "start", detail="started again (pid 12937), ready after 0.25 s")
OUTAGE = check(CheckName("line", subject="outage"), "PASS", 4.0, "applied", "s", detail="media cut both for 4 s")
TAIL = ": the media stopped while the call stayed up (a dead media relay, a cut media path; an RTP timeout ends such " \
       "calls)"


def flowing(src: str, dst: str, got: float, label: str = "main", before: int = 52) -> dict[str, Any]:
    ok = got >= 50
    return check(CheckName("rtp", call=label, direction=(src, dst), metric="flowing"), "PASS" if ok else "FAIL", got,
                 50.0, "packets", ">=",
                 f"{dst} received {got:g} RTP packets in 2 s ({before} before)" + ("" if ok else TAIL))


def media_scenario(*checks: dict[str, Any], lost: int = 0) -> dict[str, Any]:
    """A call that was answered, then whatever ``checks`` say happened to it."""
    return scenario([check(CheckName("call", call="main"), "PASS", 200, "answer", "SIP", detail="answered"), *checks],
                    calls={"main": main_call()},
                    rtp={"main": {"caller": rtp_stats(128 if lost else 52, 167, "127.0.0.1:42964", rx_lost=lost),
                                  "agent": rtp_stats(128 if lost else 52, 167, "127.0.0.1:42992", rx_lost=lost)}})


def test_relay_killed_mid_call_is_media_stopped_by_the_relay(tmp_path: Path) -> None:
    sc = media_scenario(flowing("caller", "agent", 51, "before_fault", 1), KILL, CONNECTED,
                        flowing("agent", "caller", 0), flowing("caller", "agent", 0), START)
    d = diag(tmp_path, sc, "rtp:main:caller->agent:flowing")
    assert d.rule == "media_stopped" and d.confidence == "likely"
    assert d.cause.startswith("media stopped while the call stayed up (both directions): the media relay died")
    assert "killed rtpengine (pid 12794)" in d.cause and "agent received 0 RTP packets where 50 were due" in d.cause
    assert "started again" not in d.cause  # the START came after this check
    assert "rtpengine" in d.fix and "RTP timeout" in d.fix
    assert "agent received 0 RTP packets in 2 s (52 before)" in d.facts
    assert "agent->caller: caller received 0 RTP packets in 2 s (52 before)" in d.facts
    assert "the call stayed up: both ends CONFIRMED for 2 s" in d.facts
    assert "over the whole call agent received 52 RTP packets and lost 0 (0.0 %)" in d.facts


def test_relay_started_again_does_not_bring_the_media_back(tmp_path: Path) -> None:
    sc = media_scenario(KILL, START, CONNECTED, flowing("agent", "caller", 0), flowing("caller", "agent", 0))
    d = diag(tmp_path, sc, "rtp:main:agent->caller:flowing")
    assert d.rule == "media_stopped" and "started again later" in d.cause and "knows nothing" in d.cause


def test_line_outage_is_media_lost_by_the_network(tmp_path: Path) -> None:
    sc = media_scenario(OUTAGE, CONNECTED, flowing("agent", "caller", 0, before=50),
                        flowing("caller", "agent", 0, before=50), lost=200)
    d = diag(tmp_path, sc, "rtp:main:caller->agent:flowing")
    assert d.rule == "media_stopped"
    assert d.cause.startswith("media stopped while the call stayed up (both directions): the network lost the media")
    assert "packet loss from a line outage (media cut both for 4 s)" in d.cause and "relay died" not in d.cause
    assert "RTP timeout" in d.fix
    assert "line:outage: media cut both for 4 s" in d.facts
    assert "over the whole call agent received 128 RTP packets and lost 200 (61.0 %)" in d.facts


def test_loss_in_the_rtp_figures_without_an_injected_fault_is_the_network(tmp_path: Path) -> None:
    sc = media_scenario(CONNECTED, flowing("agent", "caller", 0), flowing("caller", "agent", 0), lost=200)
    d = diag(tmp_path, sc, "rtp:main:agent->caller:flowing")
    assert d.rule == "media_stopped" and "the network lost the media" in d.cause
    assert "the path to caller (61.0 % of the call's packets)" in d.cause


def test_both_directions_stopped_without_a_known_cause_points_at_relay_or_path(tmp_path: Path) -> None:
    sc = media_scenario(CONNECTED, flowing("agent", "caller", 0), flowing("caller", "agent", 0))
    d = diag(tmp_path, sc, "rtp:main:caller->agent:flowing")
    assert d.rule == "media_stopped"
    assert "in both directions at once" in d.cause and "(rtpengine) died or the media path was cut" in d.cause
    assert "rtpengine" in d.fix and "restart" in d.fix


def test_one_direction_stopped_is_only_a_guess(tmp_path: Path) -> None:
    sc = media_scenario(CONNECTED, flowing("agent", "caller", 101), flowing("caller", "agent", 3))
    d = diag(tmp_path, sc, "rtp:main:caller->agent:flowing")
    assert d.rule == "media_stopped" and d.confidence == "possible"
    assert "from caller to agent only" in d.cause and "re-INVITE" in d.fix


@pytest.mark.parametrize("call_state", [DROPPED, None], ids=["call-dropped", "no-connected-check"])
def test_stalled_media_is_not_media_stopped_unless_the_call_was_up(tmp_path: Path,
                                                                   call_state: dict[str, Any] | None) -> None:
    sc = media_scenario(KILL, *([call_state] if call_state else []), flowing("caller", "agent", 0))
    d = diag(tmp_path, sc, "rtp:main:caller->agent:flowing")
    assert d.rule == "generic"  # the check restated: the call was not up, or nobody knows


def test_unmeasured_flow_is_not_media_stopped(tmp_path: Path) -> None:
    unmeasured = check(CheckName("rtp", call="main", direction=("caller", "agent"), metric="flowing"),
                       "ERROR", None, 50.0, "packets", ">=")
    sc = media_scenario(KILL, CONNECTED, unmeasured)
    assert diag(tmp_path, sc, "rtp:main:caller->agent:flowing").rule != "media_stopped"


# ---- call_dropped -----------------------------------------------------------------------------------
def bye(cseq: int, extra: str = "") -> str:
    return request("BYE", "sip:2001@127.0.0.1:5080;ob", "cid-1", cseq, extra=extra)


def dropped_scenario(detail: str) -> dict[str, Any]:
    return scenario([check(CheckName("call", call="main"), "PASS", 200, "answer", "SIP", detail="answered"),
                     check(CheckName("fault", subject="bye", call="main", subject_first=True),
                           "PASS", 200, "sent", "SIP"),
                     check(CheckName("call", call="main", metric="connected"),
                           "FAIL", "dropped", "connected", detail=detail)],
                    calls={"main": main_call()})


def agent_log(*byes: tuple[str, str]) -> str:
    """The agent's log: the call arrives, is answered, then each (peer, BYE text) arrives and is answered."""
    entries = [("08:00:01.000", "RX", PBX, request("INVITE", "sip:2001@127.0.0.1:5080", "cid-1", 1)),
               ("08:00:01.010", "TX", PBX, response(200, "OK", "INVITE", "cid-1", 1))]
    for i, (peer, text) in enumerate(byes):
        entries += [(f"08:00:0{2 + i}.000", "RX", peer, text),
                    (f"08:00:0{2 + i}.001", "TX", peer, response(200, "OK", "BYE", "cid-1", 1002))]
    return pjsua_log(*entries)


def test_bye_from_an_address_that_is_not_the_pbx_is_a_bye_from_nowhere(tmp_path: Path) -> None:
    sc = dropped_scenario(f"agent received a BYE from 127.0.0.9:36676, which is not the PBX ({PBX}): a BYE from "
                          "nowhere; still up at caller")
    d = diag(tmp_path, sc, "call:main:connected",
             {"agent": agent_log(("127.0.0.9:36676", bye(1002, "User-Agent: harness-fault\n")))})
    assert d.rule == "call_dropped" and d.confidence == "likely"
    assert d.cause.startswith("a BYE from nowhere dropped agent's end of the call")
    assert f"a BYE from 127.0.0.9:36676, which is not the PBX ({PBX})" in d.cause
    assert "caller's end stayed up" in d.cause and "any address" in d.cause
    assert "accept SIP only from the PBX" in d.fix and "SBC" in d.fix and "127.0.0.9:36676" in d.fix
    assert any("BYE sip:2001@127.0.0.1:5080;ob (BYE, from 127.0.0.9:36676)" in f for f in d.facts)
    assert "the BYE from 127.0.0.9:36676 says User-Agent: harness-fault" in d.facts


def test_bye_from_the_pbx_is_the_pbx_ending_the_call(tmp_path: Path) -> None:
    sc = dropped_scenario(f"agent received a BYE from the PBX ({PBX}) that caller never sent: the PBX ended the call "
                          "(an RTP timeout, a maximum call length, a restart); still up at caller")
    reason = 'Reason: SIP;cause=200;text="RTP Timeout"\n'
    d = diag(tmp_path, sc, "call:main:connected", {"agent": agent_log((PBX, bye(7, reason)))})
    assert d.rule == "call_dropped"
    assert d.cause.startswith(f"the PBX ended the call: agent received a BYE from the PBX ({PBX}) that caller never")
    assert "nowhere" not in d.cause and "session timer" in d.fix and "RTP timeout" in d.fix
    assert 'the PBX\'s BYE says Reason: SIP;cause=200;text="RTP Timeout"' in d.facts


@pytest.mark.parametrize(("peer", "words"), [("127.0.0.9:36676", "a BYE from nowhere"),
                                             (PBX, "the PBX ended the call")])
def test_without_the_checks_wording_the_bye_source_in_the_sip_log_decides(tmp_path: Path, peer: str,
                                                                         words: str) -> None:
    d = diag(tmp_path, dropped_scenario("agent: call gone"), "call:main:connected",
             {"agent": agent_log((peer, bye(9)))})
    assert d.rule == "call_dropped" and d.cause.startswith(words)


def test_other_end_hanging_up_is_not_a_fault_of_the_line(tmp_path: Path) -> None:
    d = diag(tmp_path, dropped_scenario("caller hung up: agent received its BYE through the PBX"),
             "call:main:connected", {"agent": agent_log((PBX, bye(2)))})
    assert d.rule == "call_dropped" and d.cause.startswith("the other end hung up: caller sent a BYE")
    assert "nowhere" not in d.cause and "PBX ended" not in d.cause


def test_an_end_gone_without_a_bye_is_only_a_guess(tmp_path: Path) -> None:
    d = diag(tmp_path, dropped_scenario("agent's end ended (408 Request Timeout) without a BYE received; still up at "
                                        "caller"), "call:main:connected", {"agent": agent_log()})
    assert d.rule == "call_dropped" and d.confidence == "possible"
    assert "agent's own SIP stack ended its end (408 Request Timeout)" in d.cause


@pytest.mark.parametrize(("cid", "value", "rule_name"), [
    (CheckName("call", call="main"), 404, "call_refused"),
    (CheckName("transfer", call="main", metric="recovered"), "dropped", "transfer_failed")])
def test_call_dropped_stays_out_of_other_call_outcomes(tmp_path: Path, cid: CheckName, value: Any,
                                                       rule_name: str) -> None:
    sc = scenario([check(cid, "FAIL", value, "connected")], calls={"main": main_call()})
    assert diag(tmp_path, sc, str(cid)).rule == rule_name


# ---- registration_lost ------------------------------------------------------------------------------
def register(clock: str, cseq: int, expires: int) -> list[tuple[str, str, str, str]]:
    """The agent's REGISTER asking for ``expires`` s at ``clock``, answered 200."""
    contact = f"Contact: <sip:2001@127.0.0.1:5080;ob>\nExpires: {expires}\n"
    return [(clock, "TX", PBX, request("REGISTER", "sip:127.0.0.1:35060", "reg-a", cseq, extra=contact)),
            (clock, "RX", PBX, response(200, "OK", "REGISTER", "reg-a", cseq,
                                        extra=f"Contact: <sip:2001@127.0.0.1:5080;ob>;expires={expires}\n"
                                        if expires else ""))]


def caller_log(*invites: tuple[str, str, int]) -> str:
    """The caller's log: for each (clock, Call-ID, final code) an INVITE and its answer."""
    entries = []
    for clock, cid, code in invites:
        entries += [(clock, "TX", PBX, request("INVITE", "sip:2001@lab.local", cid, 1)),
                    (clock, "RX", PBX, response(code, {200: "OK", 404: "Not Found", 480: "Temporarily Unavailable"}
                                                [code], "INVITE", cid, 1))]
    return pjsua_log(*entries)


def restart_scenario(code: int = 404, registered: bool = True) -> dict[str, Any]:
    checks = [check(CheckName("register", subject="caller"), "PASS", 200, 200, "SIP", "=="),
              check(CheckName("register", subject="agent"),
                    "PASS" if registered else "FAIL", 200 if registered else 403, 200, "SIP", "=="),
              check(CheckName("call", call="main"), "PASS", 200, "answer", "SIP", detail="answered"),
              check(CheckName("fault", subject="kamailio"), "PASS", "restart", "restart",
                    detail="killed kamailio (pid 12815); started again (pid 12881), ready after 0.25 s"),
              CONNECTED, check(CheckName("hangup", call="main"), "PASS", 12.9, "both ends released", "ms"),
              check(CheckName("call", call="after_restart"),
                    "FAIL", code, "answer", "SIP", detail=f"ended with {code}")]
    regs = {"caller": {"account": "caller", "code": 200, "reason": "OK"}}
    if registered:
        regs["agent"] = {"account": "agent1", "code": 200, "reason": "OK"}
    return scenario(checks, registrations=regs, name="faults-pbx-restart",
                    calls={"main": main_call(), "after_restart": main_call(sip_call_id="cid-2", final_code=code,
                                                                           answered=False)})


def test_pbx_restart_emptied_the_location_table(tmp_path: Path) -> None:
    logs = {"caller": caller_log(("08:00:01.000", "cid-1", 200), ("08:00:05.000", "cid-2", 404)),
            "agent": pjsua_log(*register("08:00:00.100", 2, 300), *register("08:00:06.000", 3, 0))}
    d = diag(tmp_path, restart_scenario(), "call:after_restart", logs)
    assert d.rule == "registration_lost" and d.confidence == "likely"
    assert d.cause.startswith("404: the PBX restart emptied its location table: agent registered (200) before the "
                              "restart and did not register again")
    assert "sip:2001@lab.local" in d.cause
    assert "usrloc db_mode" in d.fix and "expiry" in d.fix
    assert "agent registered: 08:00:00.100 <- SIP/2.0 200 OK (REGISTER, from 127.0.0.1:35060)" in d.facts
    assert any("granted that registration 300 s" in f for f in d.facts)
    assert any(f.startswith("fault:kamailio: killed kamailio") for f in d.facts)
    assert any("08:00:05.000 <- SIP/2.0 404 Not Found (INVITE" in f for f in d.facts)


def test_pbx_restart_with_480_names_480(tmp_path: Path) -> None:
    logs = {"caller": caller_log(("08:00:01.000", "cid-1", 200), ("08:00:05.000", "cid-2", 480)),
            "agent": pjsua_log(*register("08:00:00.100", 2, 300))}
    d = diag(tmp_path, restart_scenario(480), "call:after_restart", logs)
    assert d.rule == "registration_lost" and d.cause.startswith("480: the PBX restart emptied its location table")


def test_a_registration_after_the_last_call_before_the_restart_leaves_it_open(tmp_path: Path) -> None:
    logs = {"caller": caller_log(("08:00:01.000", "cid-1", 200), ("08:00:05.000", "cid-2", 404)),
            "agent": pjsua_log(*register("08:00:00.100", 2, 300), *register("08:00:03.000", 3, 300))}
    d = diag(tmp_path, restart_scenario(), "call:after_restart", logs)
    assert d.rule == "registration_lost" and d.confidence == "possible"
    assert "registered again (200)" in d.cause and "perhaps before the restart" in d.cause
    assert "did not register again" not in d.cause


def test_pbx_restart_without_sip_logs_is_only_probable(tmp_path: Path) -> None:
    d = diag(tmp_path, restart_scenario(), "call:after_restart")
    assert d.rule == "registration_lost" and d.confidence == "possible"
    assert d.cause.startswith("404: the PBX restart probably emptied its location table")


def test_pbx_restart_is_not_blamed_for_a_callee_that_never_registered(tmp_path: Path) -> None:
    logs = {"caller": caller_log(("08:00:01.000", "cid-1", 200), ("08:00:05.000", "cid-2", 404))}
    d = diag(tmp_path, restart_scenario(registered=False), "call:after_restart", logs)
    assert d.rule == "call_refused" and "nobody is registered" in d.cause


def test_404_for_a_registered_callee_without_a_restart_is_the_number(tmp_path: Path) -> None:
    sc = restart_scenario()
    sc["checks"] = [c for c in sc["checks"] if c["name"] != "fault:kamailio"]
    logs = {"caller": caller_log(("08:00:01.000", "cid-1", 200), ("08:00:05.000", "cid-2", 404)),
            "agent": pjsua_log(*register("08:00:00.100", 2, 300))}
    d = diag(tmp_path, sc, "call:after_restart", logs)
    assert d.rule == "call_refused" and "registered (200) yet" in d.cause


def expiry_scenario() -> dict[str, Any]:
    return scenario(
        [check(CheckName("register", subject="caller"), "PASS", 200, 200, "SIP", "=="),
         check(CheckName("register", subject="agent"),
               "PASS", 200, 200, "SIP", "==", metrics={"expires": 10, "elapsed_ms": 2.8},
               detail="registered once for 10 s with Contact 127.0.0.1:54008, never refreshed"),
         check(CheckName("call", call="before_expiry"), "PASS", 200, "answer", "SIP", detail="answered"),
         check(CheckName("hangup", call="before_expiry"), "PASS", 14.3, "both ends released", "ms"),
         check(CheckName("call", call="after_expiry"), "FAIL", 404, "answer", "SIP", detail="ended with 404")],
        registrations={"caller": {"account": "caller", "code": 200, "reason": "OK"}}, name="faults-register-expires",
        calls={"before_expiry": main_call(), "after_expiry": main_call(sip_call_id="cid-2", final_code=404,
                                                                       answered=False)})


@pytest.mark.parametrize(("first", "second", "elapsed"), [("08:00:01.000", "08:00:12.000", "11.0"),
                                                          ("23:59:58.000", "00:00:09.500", "11.5")])
def test_registration_never_refreshed_expired(tmp_path: Path, first: str, second: str, elapsed: str) -> None:
    logs = {"caller": caller_log((first, "cid-1", 200), (second, "cid-2", 404)), "agent": pjsua_log()}
    d = diag(tmp_path, expiry_scenario(), "call:after_expiry", logs)
    assert d.rule == "registration_lost" and d.confidence == "likely"
    assert d.cause.startswith("404: agent's registration expired: it registered (200) for 10 s and never refreshed it")
    assert f"at least {elapsed} s later" in d.cause and "nobody is registered for sip:2001@lab.local" in d.cause
    assert "refresh" in d.fix
    assert "register:agent: registered once for 10 s with Contact 127.0.0.1:54008, never refreshed" in d.facts


@pytest.mark.parametrize("refresh", [False, True], ids=["too-soon-to-expire", "refreshed"])
def test_404_while_the_registration_still_held_is_not_an_expiry(tmp_path: Path, refresh: bool) -> None:
    second = "08:00:05.000" if not refresh else "08:00:12.000"
    logs = {"caller": caller_log(("08:00:01.000", "cid-1", 200), (second, "cid-2", 404)),
            "agent": pjsua_log(*(register("08:00:08.000", 4, 10) if refresh else []))}
    d = diag(tmp_path, expiry_scenario(), "call:after_expiry", logs)
    assert d.rule == "call_refused" and "nobody is registered" in d.cause and "expired" not in d.cause
