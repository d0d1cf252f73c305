"""Fault and impairment steps: line faults on the lab's network path, lab components failing mid-call,
calls dropped from outside, registrations left to expire, and the check that a call survived.

Lab-only steps act on the embedded lab (``ctx.lab``): ``impair``, ``clear_impairment`` and ``outage``
need it in network-namespace mode (``harness lab up --netns``, ``HARNESS_LAB_NETNS=1``), where every
packet between the parties and the lab crosses the line of :mod:`harness.lab.netns`; ``lab_fault``
needs the lab in any mode. Against a user's PBX they stop the run before it starts (``preflight``)
and, if reached anyway, end their scenario with an ERROR saying what they need. What they take down,
the lab brings back after the scenario (:meth:`harness.lab.stack.LabStack.check`).

``expect_connected``, ``forge_bye`` and ``register_once`` work against any PBX: they judge what the
parties see, and speak raw SIP from a socket of their own where a phone's SIP stack would not.

Check names follow the diagnosis rules' kinds: ``call:<call>:connected``,
``rtp:<call>:<src>-><dst>:flowing``, ``register:<party>``, ``line:<direction>``, ``fault:<what>``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from typing import Any

from harness.contracts.errors import InputError, PartyError, PartyTimeout, StepFailed
from harness.contracts.siplog import SipLogEntry, read_messages
from harness.contracts.sipmsg import (
    SipMessage,
    SipParseError,
    build_request,
    digest_authorization,
    new_branch,
    new_call_id,
    new_tag,
    parse,
)
from harness.contracts.target import Target
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.lab.netem import Impairment
from harness.lab.netns import is_netns_address
from harness.lab.stack import LabStack
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps import call_state_is, leg_of

__all__ = ["Dialog", "dialog_from_log", "forged_bye"]

LINE_DIRECTIONS = ("both", "to_lab", "from_lab")
COMPONENTS = ("kamailio", "rtpengine", "services")
FAULT_ACTIONS = ("kill", "stop", "start", "restart")
NETNS_HINT = ("the lab in network-namespace mode ('harness lab up --netns', or HARNESS_LAB_NETNS=1 for a lab "
              "that 'harness run' starts)")
PTIME_PPS = 50.0  #: RTP packets per second at the usual 20 ms packetisation


# ---- lab access --------------------------------------------------------------------------------------
def _need_lab(ctx: RunContext, check: str, netns: bool) -> LabStack:
    """The lab this step acts on; an ERROR check and the end of the scenario when there is none."""
    lab = ctx.lab
    if lab is None or (netns and lab.netns is None):
        need = NETNS_HINT if netns else "the embedded lab"
        what = "a user's PBX" if lab is None else "a lab without its network namespace"
        ctx.check(CheckResult.error(check, f"this step needs {need}; the target is {what}"))
        raise StepFailed(f"{check}: needs {need}")
    return lab


def _preflight(target: Target, keyword: str, netns: bool) -> None:
    if not target.is_lab:
        raise InputError(f"step '{keyword}' acts on the embedded lab and cannot run against {target.source}: "
                         f"run it without --target{' in namespace mode' if netns else ''}")
    if netns and not is_netns_address(target.host):
        raise InputError(f"step '{keyword}' needs {NETNS_HINT}; the lab at {target.host} runs on loopback "
                         "('harness lab down' first if it is running)")


# ---- line impairments --------------------------------------------------------------------------------
@step("impair")
@dataclass(frozen=True)
class Impair:
    """Impair the line between the parties and the lab from now on (until ``clear_impairment`` or the end
    of the scenario): ``loss_pct`` (with ``burst`` > 1 in Gilbert-Elliott bursts of that mean length),
    ``delay_ms``, ``jitter_ms``, ``reorder_pct``, ``rate_kbit``; ``direction`` ``both`` (default),
    ``to_lab`` or ``from_lab``; ``media_only`` (default true) leaves SIP untouched."""

    impairment: Impairment
    direction: str
    seed: int | None

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Impair:
        values: dict[str, Any] = {}
        for name, (low, high) in Impairment.LIMITS.items():
            value = f.number(name, None, low=low, high=high)
            if value is not None:
                values[name] = value
        values["media_only"] = f.opt("media_only", bool, True)
        imp = Impairment(**values)
        for name, message in imp.problems():
            raise f.fail(name, message)
        if imp.clean:
            raise f.fail(None, "names no impairment: give loss_pct, delay_ms, jitter_ms, reorder_pct or rate_kbit "
                               "(clear_impairment removes one)")
        return cls(imp, f.choice("direction", LINE_DIRECTIONS, "both"), f.integer("seed", None, low=0))

    def preflight(self, target: Target) -> None:
        _preflight(target, "impair", netns=True)

    def run(self, ctx: RunContext) -> None:
        lab = _need_lab(ctx, f"line:{self.direction}", netns=True)
        assert lab.netns is not None
        lab.netns.control.set(self.impairment, self.direction, self.seed)
        ctx.log(f"  line {self.direction}: {self.impairment.describe()}")
        ctx.check(CheckResult(f"line:{self.direction}", Verdict.PASS, self.impairment.describe(), "applied",
                              metrics=self.impairment.to_dict(), detail="impairment injected on the lab's line"))


@step("clear_impairment")
@dataclass(frozen=True)
class ClearImpairment:
    """Make the line clean again (both directions, outages included)."""

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ClearImpairment:
        return cls()

    def preflight(self, target: Target) -> None:
        _preflight(target, "clear_impairment", netns=True)

    def run(self, ctx: RunContext) -> None:
        lab = _need_lab(ctx, "line:both", netns=True)
        assert lab.netns is not None
        counters = lab.netns.control.clear()
        ctx.extra.setdefault("line", []).append(counters.get("lines"))
        ctx.log("  line: clean")


@step("outage")
@dataclass(frozen=True)
class Outage:
    """Cut the line for ``seconds`` (every packet lost), then restore what it did before.

    ``media_only`` (default true) keeps SIP flowing, ``direction`` as for ``impair``; ``wait`` (default
    true) holds the scenario until the line is back, ``wait: false`` goes on while it is cut.
    """

    seconds: float
    media_only: bool
    direction: str
    wait: bool
    shorthand = "seconds"

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Outage:
        return cls(f.number("seconds", None, low=0.05, high=600, required=True), f.opt("media_only", bool, True),
                   f.choice("direction", LINE_DIRECTIONS, "both"), f.opt("wait", bool, True))

    def preflight(self, target: Target) -> None:
        _preflight(target, "outage", netns=True)

    def run(self, ctx: RunContext) -> None:
        lab = _need_lab(ctx, "line:outage", netns=True)
        assert lab.netns is not None
        lab.netns.control.outage(self.seconds, self.direction, self.media_only)
        what = "media" if self.media_only else "all traffic"
        ctx.log(f"  line {self.direction}: outage of {self.seconds:g} s ({what})")
        ctx.check(CheckResult("line:outage", Verdict.PASS, self.seconds, "applied", unit="s",
                              detail=f"{what} cut {self.direction} for {self.seconds:g} s"))
        if self.wait:
            time.sleep(min(self.seconds, max(0.0, ctx.deadline - time.monotonic())))


# ---- lab components ----------------------------------------------------------------------------------
@step("lab_fault")
@dataclass(frozen=True)
class LabFault:
    """A lab component fails: ``component`` kamailio | rtpengine | services; ``action`` kill (SIGKILL),
    stop (SIGTERM), start, or restart (SIGKILL, then started again with the same configuration and
    awaited until its readiness probe answers)."""

    component: str
    action: str

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> LabFault:
        return cls(_required_choice(f, "component", COMPONENTS), _required_choice(f, "action", FAULT_ACTIONS))

    def preflight(self, target: Target) -> None:
        _preflight(target, "lab_fault", netns=False)

    def run(self, ctx: RunContext) -> None:
        name = f"fault:{self.component}"
        lab = _need_lab(ctx, name, netns=False)
        pid = lab.pids.get(self.component)
        t0 = time.monotonic()
        detail = ""
        if self.action in ("kill", "stop", "restart"):
            lab.stop_component(self.component, kill=self.action != "stop")
            detail = f"{'stopped' if self.action == 'stop' else 'killed'} {self.component} (pid {pid})"
        if self.action in ("start", "restart"):
            ready_s = lab.start_component(self.component)
            detail += ("; " if detail else "") + f"started again (pid {lab.pids.get(self.component)}), " \
                                                 f"ready after {ready_s:.2f} s"
        ctx.log(f"  lab fault: {detail}")
        ctx.check(CheckResult(name, Verdict.PASS, self.action, self.action, detail=detail,
                              metrics={"elapsed_s": round(time.monotonic() - t0, 3)}))


def _required_choice(f: Fields, key: str, choices: tuple[str, ...]) -> str:
    f.req(key, str)
    return str(f.choice(key, choices, None))


# ---- is the call still up? ---------------------------------------------------------------------------
@step("expect_connected")
@dataclass(frozen=True)
class ExpectConnected:
    """Call ``call`` is still up at both ends and its audio flows: over ``seconds`` (default 2) each end
    must stay CONFIRMED and receive at least ``min_share`` (default 0.5) of the RTP packets a 20 ms
    stream sends in that time (media is judged when both ends are parties of the scenario).

    A dropped end is reported with where its BYE came from (the PBX, or somewhere else: a BYE from
    nowhere); stalled media with the packets received before and during the window. ``label`` (default:
    the call's name) names the checks, ``call:<label>:connected`` and ``rtp:<label>:<src>-><dst>:flowing``,
    so a scenario can judge the same call before and after a fault.
    """

    alias: str
    seconds: float
    min_share: float
    label: str

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectConnected:
        alias = scope.call(f, "call", "main")
        return cls(alias, f.number("seconds", 2.0, low=0.5, high=60), f.number("min_share", 0.5, low=0.0, high=1.0),
                   f.opt("label", str, alias))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        ends = [(leg.caller, leg.caller_call)] + ([(leg.callee, leg.callee_call)] if leg.callee and
                                                  leg.callee_call else [])
        before = {party: _rx_packets(ctx, party, cid) for party, cid in ends}
        time.sleep(min(self.seconds, max(0.0, ctx.deadline - time.monotonic())))
        dropped = [(party, cid) for party, cid in ends if _ended(ctx, party, cid)]
        name = f"call:{self.label}:connected"
        if dropped:
            why = "; ".join(_drop_story(ctx, leg, party, cid) for party, cid in dropped)
            up = [party for party, cid in ends if (party, cid) not in dropped]
            ctx.check(CheckResult(name, Verdict.FAIL, "dropped", "connected", detail=why + (
                f"; still up at {', '.join(up)}" if up else "")))
            if len(dropped) == len(ends):
                leg.ended = True
        else:
            ctx.check(CheckResult(name, Verdict.PASS, "connected", "connected",
                                  detail=f"both ends CONFIRMED for {self.seconds:g} s" if len(ends) == 2 else
                                  f"{leg.caller}'s end CONFIRMED for {self.seconds:g} s"))
        want = self.min_share * PTIME_PPS * self.seconds
        for (dst, cid), (src, _) in zip(ends, reversed(ends), strict=True):
            if dropped or len(ends) < 2:
                continue  # a dropped end sends and takes nothing: call:<label>:connected says it all
            after, start = _rx_packets(ctx, dst, cid), before[dst]
            got = None if after is None or start is None else after - start
            ctx.check(CheckResult.compare(
                f"rtp:{self.label}:{src}->{dst}:flowing", float(got) if got is not None else None, ">=", want,
                "packets", detail=("" if got is None else
                                   f"{dst} received {got} RTP packets in {self.seconds:g} s ({before[dst]} before)"
                                   + ("" if got >= want else ": the media stopped while the call stayed up (a dead "
                                      "media relay, a cut media path; an RTP timeout ends such calls)"))))


def _rx_packets(ctx: RunContext, party: str, cid: str) -> int | None:
    try:
        st = ctx.party(party).stats(cid)
    except PartyError:
        return None
    got = st.get("rx_packets") if st else None
    return int(got) if isinstance(got, int) else None


def _ended(ctx: RunContext, party: str, cid: str) -> bool:
    p = ctx.party(party)
    if not p.alive:
        return True
    with contextlib.suppress(PartyError):
        p.sync()  # an event still in the pipe is not an event that did not happen
    return p.find(call_state_is(cid, "DISCONNECTED")) is not None


def _drop_story(ctx: RunContext, leg: CallLeg, party: str, cid: str) -> str:
    """Why ``party``'s end of the call ended, from its event and its SIP log: who sent the BYE."""
    p = ctx.party(party)
    if not p.alive:
        return f"{party}'s SIP stack is gone"
    ev = p.find(call_state_is(cid, "DISCONNECTED")) or {}
    sip_call_id = str(ev.get("sip_call_id") or leg.sip_call_id)
    byes = [e for e in read_messages(p.sip_log_file, party)
            if e.direction == "RX" and e.first_line.startswith("BYE ") and e.call_id == sip_call_id]
    if not byes:
        return f"{party}'s end ended ({ev.get('code')} {ev.get('reason', '')}) without a BYE received".rstrip()
    source = byes[0].peer.split()[-1]
    pbx = _pbx_address(ctx.target)
    if source != pbx:
        return f"{party} received a BYE from {source}, which is not the PBX ({pbx}): a BYE from nowhere"
    other = leg.caller if party == leg.callee else leg.callee
    if other is not None and other in ctx.parties and any(
            e.direction == "TX" and e.first_line.startswith("BYE ") and e.call_id == sip_call_id
            for e in read_messages(ctx.party(other).sip_log_file, other)):
        return f"{other} hung up: {party} received its BYE through the PBX"
    return (f"{party} received a BYE from the PBX ({source}) that {other or 'the other end'} never sent: the PBX "
            "ended the call (an RTP timeout, a maximum call length, a restart)")


def _pbx_address(target: Target) -> str:
    try:
        host = socket.gethostbyname(target.host)
    except OSError:
        host = target.host
    return f"{host}:{target.port}"


# ---- raw SIP: a forged BYE, a REGISTER nobody refreshes ----------------------------------------------
@dataclass(frozen=True)
class Dialog:
    """One end's view of an established dialog, enough to send it an in-dialog request."""

    call_id: str
    local: str  #: this end's From/To header value, with its tag
    remote: str  #: the other end's, with its tag
    contact: str  #: this end's Contact URI (where its in-dialog requests go)
    remote_cseq: int  #: the highest CSeq the other end has used


def dialog_from_log(entries: list[SipLogEntry], call_id: str) -> Dialog | None:
    """The dialog ``call_id`` as the party whose log this is established it (UAS or UAC), or None."""
    msgs: list[tuple[str, SipMessage]] = []
    for e in entries:
        if e.call_id != call_id:
            continue
        try:
            msgs.append((e.direction, parse(e.text.encode())))
        except SipParseError:
            continue
    for direction, m in msgs:
        if m.is_response and m.status == 200 and m.cseq[1] == "INVITE" and m.tag("To"):
            if direction == "TX":  # we answered: we are the UAS, the To is ours
                invite = next((x for d, x in msgs if d == "RX" and x.method == "INVITE"), None)
                contact = _uri(m.header("Contact"))
                cseqs = [x.cseq[0] for d, x in msgs if d == "RX" and not x.is_response]
                if invite is None or not contact:
                    return None
                return Dialog(call_id, m.header("To"), m.header("From"), contact, max(cseqs or [0]))
            invite = next((x for d, x in msgs if d == "TX" and x.method == "INVITE"), None)
            contact = _uri(invite.header("Contact")) if invite is not None else ""
            if not contact:
                return None
            cseqs = [x.cseq[0] for d, x in msgs if d == "RX" and not x.is_response]
            return Dialog(call_id, m.header("From"), m.header("To"), contact, max(cseqs or [0]))
    return None


def _uri(header: str) -> str:
    if "<" in header:
        return header.split("<", 1)[1].split(">", 1)[0]
    return header.split(";", 1)[0].strip()


def forged_bye(dialog: Dialog, via_host: str, via_port: int) -> bytes:
    """A BYE that looks like the other end's, for the end that holds ``dialog``."""
    return build_request("BYE", dialog.contact, [
        ("Via", f"SIP/2.0/UDP {via_host}:{via_port};branch={new_branch()};rport"),
        ("Max-Forwards", "70"), ("From", dialog.remote), ("To", dialog.local), ("Call-ID", dialog.call_id),
        ("CSeq", f"{dialog.remote_cseq + 1000} BYE"), ("User-Agent", "harness-fault"),
    ])


def _udp_exchange(sock: socket.socket, data: bytes, dest: tuple[str, int], call_id: str, method: str,
                  timeout: float) -> SipMessage | None:
    """Send ``data`` (again every 0.5 s, as UDP SIP does) until a final response to it, or None."""
    deadline = time.monotonic() + timeout
    next_send = 0.0
    while time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            sock.sendto(data, dest)
            next_send = time.monotonic() + 0.5
        sock.settimeout(max(0.01, min(next_send, deadline) - time.monotonic()))
        try:
            raw = sock.recv(65535)
        except (TimeoutError, BlockingIOError):
            continue
        except OSError:
            return None
        try:
            m = parse(raw)
        except SipParseError:
            continue
        if m.is_response and m.status >= 200 and m.call_id == call_id and m.cseq[1] == method:
            return m
    return None


def _split_hostport(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@step("forge_bye")
@dataclass(frozen=True)
class ForgeBye:
    """Send ``party`` (default: the callee of ``call``) a BYE for its call that the other end never sent,
    from a socket of the harness's own (a BYE from nowhere): the call drops at that end only."""

    alias: str
    party: str | None

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ForgeBye:
        party = scope.party(f, "party") if f.opt("party", str, None) is not None else None
        return cls(scope.call(f, "call", "main"), party)

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        party = self.party or leg.callee or leg.caller
        cid = leg.callee_call if party == leg.callee else leg.caller_call
        name = f"fault:bye:{self.alias}"
        if cid is None or party not in (leg.caller, leg.callee):
            ctx.check(CheckResult.error(name, f"party '{party}' is not an end of call '{self.alias}'"))
            raise StepFailed(f"{name}: '{party}' is not on the call")
        p = ctx.party(party)
        ev = p.find(call_state_is(cid, "CONFIRMED")) or {}
        sip_call_id = str(ev.get("sip_call_id") or leg.sip_call_id)
        dialog = dialog_from_log(read_messages(p.sip_log_file, party), sip_call_id)
        if dialog is None or not p.sip_address:
            ctx.check(CheckResult.error(name, f"no established dialog {sip_call_id or '?'} in {party}'s SIP log"))
            raise StepFailed(f"{name}: nothing to forge a BYE for")
        dest = _split_hostport(p.sip_address)
        mark = p.mark()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((p.local_ip, 0))
            lhost, lport = s.getsockname()[:2]
            answer = _udp_exchange(s, forged_bye(dialog, lhost, lport), dest, sip_call_id, "BYE", 3.0)
        ctx.log(f"  forged BYE from {lhost}:{lport} to {party} at {p.sip_address}: "
                f"{answer.status if answer else 'no answer'}")
        if answer is None:
            ctx.check(CheckResult.error(name, f"{party} did not answer the forged BYE within 3 s"))
            return
        with contextlib.suppress(PartyTimeout):  # the expect_connected after it says what happened
            p.wait_event(call_state_is(cid, "DISCONNECTED"), ctx.remaining(3.0), "the forged BYE to end the call",
                         mark)
        ctx.check(CheckResult(name, Verdict.PASS, answer.status, "sent", unit="SIP",
                              detail=f"BYE from {lhost}:{lport} to {party}: {answer.status} {answer.reason}"))


@step("register_once")
@dataclass(frozen=True)
class RegisterOnce:
    """Register ``party``'s account with one REGISTER of ``expires`` seconds (default 10, kamailio's
    minimum) whose Contact is the party, and never refresh it: a phone that registered and then went
    silent. The party must have ``register: false``; once the time is up the PBX should not reach it."""

    party: str
    expires: int

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> RegisterOnce:
        party = scope.party(f, "party")
        spec = scope.parties[party]
        if getattr(spec, "register", False):
            raise f.fail("party", f"party '{party}' registers (and refreshes) by itself: give it 'register: false' "
                                  "so that this step's REGISTER is the only one")
        return cls(party, f.integer("expires", 10, low=1, high=3600))

    def run(self, ctx: RunContext) -> None:
        p = ctx.party(self.party)
        account = ctx.target.account(ctx.account_of(self.party))
        target = ctx.target
        name = f"register:{self.party}"
        ruri = f"sip:{target.sip_domain}"
        aor = target.aor(account.username)
        call_id, tag = new_call_id(p.local_ip), new_tag()
        dest = (socket.gethostbyname(target.host), target.port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((p.local_ip, 0))
            lhost, lport = s.getsockname()[:2]

            def request(cseq: int, auth: tuple[str, str] | None) -> bytes:
                headers = [("Via", f"SIP/2.0/UDP {lhost}:{lport};branch={new_branch()};rport"),
                           ("Max-Forwards", "70"), ("From", f"<{aor}>;tag={tag}"), ("To", f"<{aor}>"),
                           ("Call-ID", call_id), ("CSeq", f"{cseq} REGISTER"),
                           ("Contact", f"<sip:{account.username}@{p.sip_address}>"),
                           ("Expires", str(self.expires)), ("User-Agent", "harness-fault")]
                if auth is not None:
                    headers.append(auth)
                return build_request("REGISTER", ruri, headers)

            t0 = time.monotonic()
            answer = _udp_exchange(s, request(1, None), dest, call_id, "REGISTER", 4.0)
            if answer is not None and answer.status in (401, 407):
                challenge = answer.header("WWW-Authenticate" if answer.status == 401 else "Proxy-Authenticate")
                value = digest_authorization(challenge, "REGISTER", ruri, account.auth_username,
                                             account.password.reveal())
                header = "Authorization" if answer.status == 401 else "Proxy-Authorization"
                answer = _udp_exchange(s, request(2, (header, value)), dest, call_id, "REGISTER", 4.0)
        ms = round((time.monotonic() - t0) * 1000.0, 1)
        if answer is None:
            ctx.check(CheckResult(name, Verdict.FAIL, "no response", 200, op="==", unit="SIP",
                                  detail=f"no answer from {dest[0]}:{dest[1]} to REGISTER within 4 s"))
            raise StepFailed(f"{name}: the PBX did not answer the REGISTER")
        ok = 200 <= answer.status < 300
        ctx.check(CheckResult(name, Verdict.PASS if ok else Verdict.FAIL, answer.status, 200, op="==", unit="SIP",
                              metrics={"expires": self.expires, "elapsed_ms": ms}, detail=(
                                  f"registered once for {self.expires} s with Contact {p.sip_address}, never "
                                  "refreshed" if ok else f"{answer.status} {answer.reason}")))
        if not ok:
            raise StepFailed(f"{name}: REGISTER answered {answer.status}")
        ctx.log(f"  {self.party} registered once for {self.expires} s (no refresh)")
