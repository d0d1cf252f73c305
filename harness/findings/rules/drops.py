"""The rule for a call dropped mid-call: ``call:<call>:connected`` found an end of an established call
gone. Who ended it comes from the check's detail (as expect_connected words it), else from the BYEs in
the parties' SIP logs: an address that is not the PBX, the PBX itself, the other end, or the party's own
stack."""

from __future__ import annotations

import ipaddress
import re

from harness.contracts.siplog import LoggedMessage
from harness.findings.evidence import Clues, summary_line
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry


#: how expect_connected tells why an end dropped (harness.scenarios.steps_faults._drop_story)
_STRAY = re.compile(r"(\S+) received a BYE from (\S+), which is not the PBX \(([^)]*)\)")
_FROM_PBX = re.compile(r"(\S+) received a BYE from the PBX \(([^)]*)\) that (.+?) never sent")
_HUNG_UP = re.compile(r"(\S+) hung up: (\S+) received its BYE through the PBX")
_NO_BYE = re.compile(r"(\S+)'s end ended \(([^)]*)\) without a BYE received")
_GONE = re.compile(r"(\S+)'s SIP stack is gone")
_STILL_UP = re.compile(r"still up at ([^;]+)$")


def _pbx_address(c: Clues) -> str | None:
    """The PBX's ip:port as the SIP logs name peers; None when the profile names it by host name."""
    host, port = str(c.target.get("host") or ""), c.target.get("port")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return f"{host}:{port}"


def _drop_cause(c: Clues, detail: str, byes: dict[str, list[LoggedMessage]]) -> tuple[str, tuple[str, ...]]:
    """(what dropped the call, its parts) from the check's detail, else from the BYEs in the SIP logs."""
    for kind, pattern in (("stray", _STRAY), ("pbx", _FROM_PBX), ("hung_up", _HUNG_UP), ("no_bye", _NO_BYE),
                          ("gone", _GONE)):
        said = pattern.search(detail)
        if said:
            return kind, said.groups()
    pbx = _pbx_address(c)
    for party, msgs in byes.items():
        for bye in msgs:
            if pbx and bye.peer != pbx:
                return "stray", (party, bye.peer, pbx)
    for party, msgs in byes.items():
        if msgs and pbx:
            return "pbx", (party, pbx, "the other end")
    return "", ()


@rule("call_dropped", kinds=("call",), order=25)
def call_dropped(c: Clues) -> Diagnosis | None:
    """``call:<call>:connected`` found an end of an established call gone: who ended it (a BYE from an
    address that is not the PBX, the PBX itself, the other end, or the party's own stack)."""
    n = c.name
    if n.part != "connected" or c.value != "dropped":
        return None
    detail = str(c.check.get("detail") or "")
    call_id = str((c.calls.get(n.subject) or {}).get("sip_call_id") or "")
    byes = {p: [m for m in c.requests(p, "BYE", direction="RX") if not call_id or m.msg.call_id == call_id]
            for p in c.involved()}
    kind, parts = _drop_cause(c, detail, byes)
    still = _STILL_UP.search(detail)
    up = f"; {still.group(1)}'s end stayed up (a half-open call: dead air there until it hangs up)" if still else ""
    facts = [detail, *(summary_line(m) for msgs in byes.values() for m in msgs[:2])]
    if kind == "stray":
        party, source, pbx = parts
        agents = {m.msg.header("User-Agent") for m in byes.get(party, []) if m.peer == source} - {""}
        facts += [f"the BYE from {source} says User-Agent: {ua}" for ua in sorted(agents)]
        return found(f"a BYE from nowhere dropped {party}'s end of the call: {party} accepted a BYE from {source}, "
                     f"which is not the PBX ({pbx}){up}. The phone takes in-dialog requests from any address, so "
                     "anyone who learns or guesses the dialog (Call-ID and tags) can hang it up: a stray or forged "
                     "BYE, a leftover B2BUA leg, a scanner",
                     "make the phones accept SIP only from the PBX / outbound proxy (the phone's 'accept SIP from "
                     "the proxy only' or trusted-peer setting, or a firewall before the phones that lets SIP in from "
                     "the PBX alone); hide the topology behind an SBC so phone addresses and dialog identifiers do "
                     f"not leak; find who sends from {source}", *facts)
    if kind == "pbx":
        party, source, other = parts
        reasons = {m.msg.header("Reason") for m in byes.get(party, []) if m.peer == source} - {""}
        facts += [f"the PBX's BYE says Reason: {r}" for r in sorted(reasons)]
        return found(f"the PBX ended the call: {party} received a BYE from the PBX ({source}) that {other} never "
                     f"sent{up}. PBXs end calls on a session-timer expiry (a refresh re-INVITE/UPDATE that failed), "
                     "an RTP/media timeout, a maximum call duration, or a restart",
                     "read the PBX's log at the time of the BYE and raise or fix the timer that fired: session "
                     "timers (Session-Expires, refresher), the RTP timeout (a held or silent leg), the maximum call "
                     "length (dialog or absolute timeout)", *facts)
    if kind == "hung_up":
        other, party = parts
        return found(f"the other end hung up: {other} sent a BYE and the PBX passed it to {party}; the call did not "
                     "drop by itself", f"find why {other} ended the call ({other}'s log and SIP log in the evidence: "
                     "an automatic hang-up, a call-length limit on the phone, a step of the scenario)", *facts)
    if kind == "no_bye":
        party, why = parts
        return found(f"{party}'s own SIP stack ended its end ({why}) without receiving a BYE{up}: an in-dialog "
                     "request that failed (a session refresh or re-INVITE answered 408/481 or not at all) or a "
                     f"transport failure", f"read {party}'s SIP log around the end: the last request it sent and "
                     "its answer", *facts, confidence="possible")
    if kind == "gone":
        return found(f"{parts[0]}'s SIP stack process is gone: the harness's party died, the PBX did not drop the "
                     "call", f"read {parts[0]}'s .log in the evidence; report it with that log", *facts)
    return found(f"the call dropped: {detail or 'an end of the call ended'}", "compare the BYE (or its absence) in "
                 "both parties' SIP logs with the PBX's log at that time", *facts, confidence="possible")
