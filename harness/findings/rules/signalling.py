"""Rules for SIP signalling: credentials, an unreachable PBX, call outcomes, setup time, release, and
harness-side faults. A registration the PBX lost or let expire is :mod:`.registration`'s, a call
dropped mid-call :mod:`.drops`'."""

from __future__ import annotations

from typing import Any

from harness.findings.evidence import Clues, summary_line
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

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
