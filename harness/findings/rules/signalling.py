"""Rules for SIP signalling: registration, call outcomes (also a registration the PBX lost or let
expire), setup time, calls dropped mid-call, release, harness-side faults."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from harness.findings.evidence import Clues
from harness.findings.model import Diagnosis
from harness.findings.rules import found, rule
from harness.findings.siplog import LoggedMessage, summary_line

__all__: list[str] = []  # reached through the registry

#: final responses to an INVITE: what they mean and what to do, in plain words
CALL_CODES: dict[int, tuple[str, str]] = {
    403: ("the PBX forbids this call: the calling account may not dial {uri} (call permissions, toll "
          "restriction, a dial plan context without that number)",
          "give the calling account the right to dial this number on the PBX (its context / class of service), "
          "or dial a number it is allowed to reach"),
    404: ("nobody is registered for {uri}, or the number is not in the PBX's dial plan (an agent that is not "
          "logged in looks exactly like this)",
          "log the agent or extension in (make it register), or correct the number in the target profile's "
          "'numbers' or the scenario's 'to'"),
    484: ("the number {uri} is incomplete for the PBX's dial plan", "dial the full number (prefix, length)"),
    480: ("the callee {uri} is temporarily unavailable: registered but not reachable, in do-not-disturb, or "
          "logged out of the queue", "check the callee's phone/agent state (DND, logged in, paused) and its "
          "registration on the PBX"),
    486: ("the callee {uri} is busy (486 Busy Here): it is on another call or has call waiting off",
          "free the callee (end its other calls), enable call waiting, or dial an idle agent"),
    600: ("every device of {uri} is busy (600 Busy Everywhere)", "free the callee or dial an idle agent"),
    603: ("the callee {uri} declined the call (603 Decline)", "check why the callee rejects (DND, call "
          "screening, an auto-reject rule)"),
    487: ("the call was cancelled before it was answered (487 Request Terminated)",
          "check what cancelled it: a ring timeout on the PBX shorter than the scenario's, or the caller"),
    488: ("the callee or PBX refused the media offer (488 Not Acceptable Here): no codec in common, or SRTP "
          "required on one side only", "align the codecs (target profile 'media.codecs' and the PBX's allowed "
          "codecs) and the SRTP policy of both sides"),
    415: ("the callee or PBX refused the offer's body type (415)", "check the SDP/content types both sides accept"),
    606: ("the offer is not acceptable anywhere (606): no codec in common", "align the codecs of both sides"),
    500: ("the PBX failed internally while routing the call (500 Server Internal Error)",
          "read the PBX's log at the time of the call; a dial plan or script error is the usual cause"),
    502: ("a gateway or trunk behind the PBX answered badly (502 Bad Gateway)", "check the trunk/gateway"),
    503: ("the PBX could not serve the call (503 Service Unavailable): overloaded, starting up, no route or "
          "trunk down", "check the PBX's load and its trunks/routes; retry when it is up"),
    504: ("a server behind the PBX did not answer in time (504 Server Time-out)", "check the trunk/next hop"),
    408: ("no final answer came back in time (408 Request Timeout): the callee's device or the next hop did "
          "not respond", "check that the callee's phone is reachable from the PBX (NAT keep-alives, firewall)"),
}


def _profile(c: Clues) -> str:
    src = str(c.target.get("source") or "")
    if c.target.get("is_lab") or not src or src.startswith("<"):
        return "the lab's built-in profile"
    return f"the target profile {src}"


def _account(c: Clues, party: str) -> tuple[str, str]:
    """(account name, SIP user) of a party, as far as the results tell."""
    acct = str((c.registrations.get(party) or {}).get("account") or party)
    user = next((str(a.get("username")) for a in c.target.get("accounts", []) if a.get("name") == acct), "?")
    return acct, user


def _pbx(c: Clues) -> str:
    t = c.target
    return f"{t.get('host', '?')}:{t.get('port', '?')}/{t.get('transport', 'udp')}" if t else "the PBX"


def _since(t: float, anchor: float) -> float:
    return (t - anchor) % 86400.0  # log clocks wrap at midnight; a scenario never lasts half a day


def _not_after(a: float, b: float) -> bool:
    """Log time ``a`` is at or before ``b``."""
    return _since(b, a) < 43200.0


def _call_times(c: Clues, checks: list[dict[str, Any]]) -> list[tuple[float, LoggedMessage]]:
    """The first INVITE of each call whose outcome check (``call:<alias>``) is among ``checks``: a call
    checked before a step ran was placed before it, so its INVITE pins that moment in the logs' time."""
    names = [str(chk.get("name", "")) for chk in checks]
    return [t for name in names if name.startswith("call:") and name.count(":") == 1
            and (t := _invite(c, name.split(":", 1)[1])) is not None]


@rule("auth_failure", kinds=("register", "call"), order=10)
def auth_failure(c: Clues) -> Diagnosis | None:
    code = c.code
    if code not in (401, 403, 407) or (c.name.kind == "call" and code == 403):
        return None
    n = c.name
    party = n.subject if n.kind == "register" else str((c.calls.get(n.subject) or {}).get("caller") or "")
    acct, user = _account(c, party)
    what = "REGISTER" if n.kind == "register" else "INVITE"
    answers = c.responses(party, what)
    challenged = [m for m in answers if m.msg.status in (401, 407)]
    facts = [summary_line(m) for m in answers[-4:]]
    if code == 403:
        cause = (f"the PBX forbids {what} for account '{acct}' (user {user}) with 403 Forbidden: the account is "
                 "disabled, the domain/realm is wrong, or the source address is not allowed (ACL, or banned "
                 "after earlier wrong passwords)")
        fix = (f"check account '{acct}' on the PBX (enabled, allowed networks, fail2ban/ban list) and the domain in "
               f"{_profile(c)}")
    else:
        again = " again after the harness answered the challenge with the credentials" if len(challenged) > 1 \
            else ""
        cause = (f"the PBX refused the credentials of account '{acct}' (user {user}): {what} was answered "
                 f"{code}{again}, so the password (or auth username/realm) does not match the PBX's")
        fix = (f"correct the password of account '{acct}' in {_profile(c)} (password / password_env) or the "
               "extension's secret on the PBX; check auth_username and realm if the PBX uses others. Several "
               "wrong attempts can get the address banned: unblock it on the PBX.")
    return found(cause, fix, *facts)


@rule("unreachable", kinds=("register", "call", "step"), order=20)
def unreachable(c: Clues) -> Diagnosis | None:
    n = c.name
    code = c.code
    timeout_error = c.error.get("kind") == "PartyTimeout" and n.kind == "step"
    if n.kind == "register" and code not in (408, 503, 504) and c.value not in (None, "no response"):
        return None
    if n.kind == "call" and code not in (408, 503, 504):
        return None
    if n.kind == "step" and not timeout_error:
        return None
    parties = c.involved()
    sent = sum(1 for p in parties for m in c.sip_log(p) if m.direction == "TX")
    received = sum(1 for p in parties for m in c.sip_log(p) if m.direction == "RX")
    if timeout_error:
        return found(f"an awaited event did not come in time at {c.error.get('step')}: {c.error.get('message')}",
                     "read the party's SIP log around that step: a request without a response points at the PBX "
                     "(or the network), an event never raised at the far party points at routing",
                     f"{sent} SIP messages sent, {received} received by {', '.join(parties) or 'the parties'}",
                     confidence="possible")
    if sent and not received:
        return found(f"the PBX at {_pbx(c)} never answered: {sent} SIP messages were sent and nothing came back; "
                     "it is not running, the address/port/transport is wrong, or a firewall drops SIP",
                     f"check pbx.host/port/transport in {_profile(c)} and that the PBX runs and listens there "
                     "(for the lab: 'harness lab status'); open the SIP port in any firewall on the way",
                     f"{sent} sent, 0 received")
    if code in (503, 504):
        return found(f"the PBX answered {code}: it is overloaded, still starting, or a backend it needs (database, "
                     "trunk) is down", "check the PBX's state and log at that time; retry when it is healthy",
                     f"{sent} SIP messages sent, {received} received")
    return found(f"the transaction timed out ({code or 'no answer'}) although the PBX answered other messages: "
                 "packets are lost on the way, or the PBX drops this request (rate limit, ban)",
                 "compare the party's SIP log with the PBX's; check rate limiting / intrusion prevention on the PBX",
                 f"{sent} SIP messages sent, {received} received", confidence="possible")


def _invite(c: Clues, alias: str) -> tuple[float, LoggedMessage] | None:
    """When the caller of call ``alias`` sent its first INVITE, from its SIP log."""
    call = c.calls.get(alias) or {}
    call_id = str(call.get("sip_call_id") or "")
    for m in c.requests(str(call.get("caller") or ""), "INVITE"):
        if call_id and m.msg.call_id == call_id:
            return m.seconds, m
    return None


def _expires(msg: LoggedMessage) -> int | None:
    """The expiry a REGISTER asked for, or its 200 OK granted (Contact ;expires= first, then Expires)."""
    contact = re.search(r";\s*expires\s*=\s*(\d+)", msg.msg.header("Contact"), re.IGNORECASE)
    raw = contact.group(1) if contact else msg.msg.header("Expires").strip()
    return int(raw) if raw.isdigit() else None


def _bindings(c: Clues, party: str) -> list[tuple[float, LoggedMessage]]:
    """(time, 200 OK) of every REGISTER of ``party`` that bound a contact (not the un-REGISTERs, expires 0)."""
    msgs = c.sip_log(party)
    unregister = {(m.msg.call_id, m.msg.cseq[0]) for m in msgs
                  if m.direction == "TX" and m.msg.method == "REGISTER" and _expires(m) == 0}
    out = []
    for m in c.responses(party, "REGISTER"):
        if m.msg.status == 200 and (m.msg.call_id, m.msg.cseq[0]) not in unregister:
            out.append((m.seconds, m))
    return out


def _answer(c: Clues, alias: str, code: int) -> str:
    call = c.calls.get(alias) or {}
    call_id = str(call.get("sip_call_id") or "")
    got = [m for m in c.responses(str(call.get("caller") or ""), "INVITE")
           if m.msg.status == code and (not call_id or m.msg.call_id == call_id)]
    return summary_line(got[-1]) if got else ""


@rule("registration_lost", kinds=("call",), order=28)
def registration_lost(c: Clues) -> Diagnosis | None:
    """A 404/480 for a callee that had registered (200) earlier in the scenario, and whose registration
    the PBX lost since: a PBX restart that emptied its location table, or a registration that was never
    refreshed and expired. Timing comes from the parties' SIP logs (the scenario's checks have none):
    a call checked before an event was placed before it."""
    code, n = c.code, c.name
    call = c.calls.get(n.subject) or {}
    callee = str(call.get("callee") or "")
    if code not in (404, 480) or n.part or not callee:
        return None
    earlier = c.earlier_checks()
    failed = _invite(c, n.subject)
    restart = next((i for i in range(len(earlier) - 1, -1, -1) if earlier[i].get("name") == "fault:kamailio"
                    and earlier[i].get("verdict") == "PASS" and earlier[i].get("value") in ("restart", "start")),
                   None)
    if restart is not None:
        return _lost_in_restart(c, code, callee, earlier, restart, failed)
    reg = next((chk for chk in reversed(earlier) if chk.get("name") == f"register:{callee}"
                and chk.get("verdict") == "PASS" and isinstance((chk.get("metrics") or {}).get("expires"), int)),
               None)
    return _expired(c, code, callee, earlier, reg, failed) if reg is not None and failed is not None else None


def _lost_in_restart(c: Clues, code: int, callee: str, earlier: list[dict[str, Any]], restart: int,
                     failed: tuple[float, LoggedMessage] | None) -> Diagnosis | None:
    uri = str((c.calls.get(c.name.subject) or {}).get("uri") or callee)
    before = earlier[:restart]
    registered = (c.registrations.get(callee) or {}).get("code") == 200 or any(
        chk.get("name") == f"register:{callee}" and chk.get("verdict") == "PASS" for chk in before)
    if not registered:
        return None
    anchors = _call_times(c, before)  # their INVITEs were sent before the restart
    bindings = [(t, m) for t, m in _bindings(c, callee) if failed is None or _not_after(t, failed[0])]
    granted = _expires(bindings[-1][1]) if bindings else None
    facts = [f"{callee} registered: {summary_line(bindings[-1][1])}" if bindings else "",
             f"the PBX granted that registration {granted} s: {callee} would refresh it only near its end"
             if granted else "",
             f"fault:kamailio: {earlier[restart].get('detail')}", _answer(c, c.name.subject, code)]
    fix = ("keep registrations across a PBX restart: persistent location storage (kamailio: usrloc db_mode with a "
           "database; other PBXs keep contacts in their database) or a standby that shares it; or make phones "
           "register again soon: a shorter registration expiry, or a re-register prompted after the restart "
           "(a NOTIFY check-sync, a reboot of the phones)")
    anchor = anchors[-1][0] if anchors else None
    if not bindings or anchor is None or failed is None:
        return found(f"{code}: the PBX restart probably emptied its location table: {callee} registered (200) "
                     f"before the restart and the PBX had no contact for {uri} after it (the SIP logs do not show "
                     "whether it registered again)", fix, *facts, confidence="possible")
    again = [m for t, m in bindings if not _not_after(t, anchor)]
    if again:
        return found(f"{code}: the PBX restart may have emptied its location table, but {callee} registered again "
                     f"(200) between a call placed before the restart and this one, perhaps before the restart: "
                     f"{summary_line(again[-1])}", fix, *facts, confidence="possible")
    return found(f"{code}: the PBX restart emptied its location table: {callee} registered (200) before the restart "
                 f"and did not register again, so the PBX had no contact for {uri}", fix, *facts)


def _expired(c: Clues, code: int, callee: str, earlier: list[dict[str, Any]], reg: dict[str, Any],
             failed: tuple[float, LoggedMessage]) -> Diagnosis | None:
    uri = str((c.calls.get(c.name.subject) or {}).get("uri") or callee)
    expires = int(reg["metrics"]["expires"])
    anchors = _call_times(c, earlier[next(i for i, chk in enumerate(earlier) if chk is reg) + 1:])
    if not anchors:
        return None
    anchor = anchors[0]  # the first call placed after the REGISTER: the registration is older than its INVITE
    elapsed = _since(failed[0], anchor[0])
    refreshed = [m for t, m in _bindings(c, callee) if _since(t, anchor[0]) < elapsed]
    if elapsed < expires or refreshed:
        return None  # still registered by the clock, or renewed: the 404 is something else
    return found(f"{code}: {callee}'s registration expired: it registered (200) for {expires} s and never "
                 f"refreshed it, and this call came at least {elapsed:.1f} s later, so nobody is registered for "
                 f"{uri} any more", f"find why {callee}'s phone stopped refreshing its registration (power, network, "
                 "a NAT or firewall that blocks the refresh, a re-register interval longer than the expiry the PBX "
                 "grants); a phone must register again before its registration runs out",
                 f"register:{callee}: {reg.get('detail')}", f"the first call after it: {summary_line(anchor[1])}",
                 _answer(c, c.name.subject, code))


@rule("call_refused", kinds=("call",), order=30)
def call_refused(c: Clues) -> Diagnosis | None:
    code = c.code
    if code is None or code < 300 or code not in CALL_CODES:
        return None
    call = c.calls.get(c.name.subject) or {}
    uri = str(call.get("uri") or "the callee")
    cause, fix = (s.format(uri=uri) for s in CALL_CODES[code])
    facts = [summary_line(m) for m in c.responses(str(call.get("caller") or ""), "INVITE")[-3:]]
    callee = call.get("callee")
    if code == 404 and callee:
        reg = c.registrations.get(str(callee)) or {}
        if reg.get("code") == 200:
            cause = (f"the callee party '{callee}' registered (200) yet the PBX answered 404 for {uri}: the number "
                     "dialled does not lead to that account")
            fix = "make the dialled number match the callee's account (target profile 'numbers', PBX dial plan)"
            facts.append(f"{callee} registered with 200 OK")
    return found(f"{code}: {cause}", fix, *facts)


@rule("no_answer", kinds=("call",), order=35)
def no_answer(c: Clues) -> Diagnosis | None:
    if c.value != "no answer":
        return None
    call = c.calls.get(c.name.subject) or {}
    caller = str(call.get("caller") or "")
    provisional = [m for m in c.responses(caller, "INVITE") if 100 < m.msg.status < 200]
    if provisional:
        return found(f"it rang ({provisional[-1].msg.status} {provisional[-1].msg.reason}) but nobody answered: "
                     f"{c.check.get('detail')}", "make sure the callee answers (agent logged in and free, "
                     "auto-answer on the test phone), or raise the call's timeout_s if the PBX rings longer on "
                     "purpose", summary_line(provisional[-1]))
    return found("not even a ringing response came back for the INVITE: the PBX did not route the call to a "
                 "phone", "check the PBX's routing of the number and the callee's registration",
                 str(c.check.get("detail") or ""), confidence="possible")


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


@rule("slow_setup", kinds=("setup_time",), order=10)
def slow_setup(c: Clues) -> Diagnosis | None:
    call = c.calls.get(c.name.subject) or {}
    value, limit = c.value, c.check.get("threshold")
    if value is None:
        return found("no setup time was measured because the call was not answered",
                     f"see the finding of check call:{c.name.subject}; this one follows from it",
                     str(c.check.get("detail") or ""))
    first = call.get("invite_to_provisional_ms")
    ring = call.get("invite_to_180_ms")
    challenges = [m for m in c.responses(str(call.get("caller") or ""), "INVITE") if m.msg.status in (401, 407)]
    facts = [f"INVITE -> 200 OK {value} ms (limit {limit} ms)"]
    facts += [f"INVITE -> first provisional {first} ms"] if first is not None else []
    facts += [f"INVITE -> 180 Ringing {ring} ms"] if ring is not None else []
    facts += [f"{len(challenges)} authentication challenge(s) before the call went through"] if challenges else []
    if isinstance(ring, int | float) and isinstance(value, int | float) and value - ring > value / 2:
        return found(f"setup took {value} ms, {value - ring:.0f} ms of it between ringing and answer: the callee "
                     "answered late (answer delay on the phone or agent, a queue announcement), not slow routing",
                     "shorten the answer delay of the callee or the announcement, or set setup_time_ms to what "
                     "the service promises", *facts)
    if isinstance(first, int | float) and isinstance(value, int | float) and first > value / 2:
        return found(f"setup took {value} ms and the PBX needed {first} ms for its first response: slow routing "
                     "(DNS look-ups, a database or LDAP query, an overloaded PBX)",
                     "check the PBX's load and the look-ups its dial plan makes; use IP addresses or local caches",
                     *facts)
    return found(f"setup took {value} ms against a limit of {limit} ms", "compare the SIP timestamps in the "
                 "caller's log: the largest gap between INVITE, provisional and 200 OK shows where time goes",
                 *facts, confidence="possible")


@rule("call_not_released", kinds=("hangup",), order=10)
def call_not_released(c: Clues) -> Diagnosis | None:
    detail = str(c.check.get("detail") or "")
    if not detail.startswith("still up"):
        return None
    byes = [summary_line(m) for p in c.involved() for m in c.sip_log(p) if m.msg.cseq[1] == "BYE"]
    return found(f"the call was not released at both ends ({detail}): the BYE did not reach the other end or was "
                 "not answered; in-dialog routing (Record-Route, a proxy alias without port) is the usual cause",
                 "check that the PBX routes in-dialog requests (BYE) back to the other end; compare the BYE in both "
                 "parties' SIP logs", *byes[-4:])


@rule("harness_fault", kinds=("step", "lab", "scenario"), order=40)
def harness_fault(c: Clues) -> Diagnosis | None:
    err: dict[str, Any] = c.error
    if c.name.kind == "lab":
        return found(f"a lab component died during the scenario: {c.check.get('detail')}",
                     "read kamailio.log / rtpengine.log in the lab directory; 'harness lab status' shows what runs",
                     str(c.check.get("detail") or "").splitlines()[0] if c.check.get("detail") else "")
    if err.get("kind") == "PartyCrashed":
        return found(f"a SIP party process of the harness crashed ({err.get('message')}): a harness or pjsua2 "
                     "fault, not the PBX's", "read the party's .log in the evidence; report it with that log",
                     *str(err.get("log_tail") or "").splitlines()[-3:])
    if err.get("message"):
        return found(f"the scenario stopped at {err.get('step')}: {err.get('message')}",
                     "fix what the message names; the steps after it were not run", confidence="possible")
    return None
