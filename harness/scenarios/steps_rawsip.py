"""Raw SIP where a phone's SIP stack would not send it: a BYE from nowhere, a REGISTER nobody refreshes.

``forge_bye`` sends a party a BYE for its call that the other end never sent; ``register_once`` registers a
party's account once and never refreshes it. Both work against any PBX, and both send through a probe
session (:func:`~harness.scenarios.steps_probe.probe_session`): every packet passes a scope (the REGISTER
goes to the target; the BYE to the SIP address of a party of the scenario, on this machine, and nowhere
else: :func:`party_scope`), is paid from a packet budget, and is written to ``probes-evidence.txt``.

Checks: ``fault:bye:<call>``, ``register:<party>``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from dataclasses import dataclass

from harness.contracts.checkname import CheckName
from harness.contracts.errors import PartyTimeout, ProbeConnectError, ProbeScopeError, StepFailed
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
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.probes import ProbeScope, SipProbe
from harness.probes.probe_uac import auth_header
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_call import call_state_is, leg_of
from harness.scenarios.steps_probe import probe_session
from harness.sip import Party

__all__ = ["Dialog", "dialog_from_log", "forged_bye", "party_scope"]

BYE_WAIT_S = 3.0  #: how long the forged BYE waits for its answer (UDP retransmissions included)
BYE_PACKETS = 6  #: its packet budget: the BYE and its retransmissions within the wait
REGISTER_WAIT_S = 4.0  #: how long each REGISTER waits for its final answer
REGISTER_PACKETS = 12  #: the budget of the REGISTER, its digest answer and their retransmissions


# ---- the dialog a forged BYE belongs to ----------------------------------------------------------------
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


def party_scope(p: Party) -> tuple[ProbeScope, int]:
    """Where raw SIP to a party of the scenario may go: its own SIP address (and port), which the harness
    bound on this machine (``p.local_ip``), and nowhere else. ProbeScopeError when its address is not that."""
    host, _, port = p.sip_address.rpartition(":")
    host = host.strip("[]")
    try:
        addr = str(ipaddress.ip_address(host))
    except ValueError:
        raise ProbeScopeError(f"party {p.name}'s SIP address {p.sip_address!r} is not an IP address") from None
    if addr != str(ipaddress.ip_address(p.local_ip)):
        raise ProbeScopeError(f"refusing to send to {p.sip_address}: party {p.name} was bound to {p.local_ip}")
    return ProbeScope(addr, (addr,)), int(port)


# ---- the steps -----------------------------------------------------------------------------------------
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
        name = CheckName("fault", call=self.alias, subject="bye", subject_first=True)
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
        try:
            scope, port = party_scope(p)
        except ProbeScopeError as exc:
            ctx.check(CheckResult.error(name, str(exc)))
            raise StepFailed(f"{name}: {exc}") from None
        mark = p.mark()
        with probe_session(ctx, packets=BYE_PACKETS, timeout_s=BYE_WAIT_S, scope=scope) as ps:
            try:
                probe = ps.probe("udp", port=port, source=p.local_ip, user_agent="harness-fault")
            except ProbeConnectError as exc:
                ctx.check(CheckResult.error(name, f"cannot send {party} a BYE: {exc.reason}"))
                return
            lhost, lport = probe.local
            ex = probe.transact(forged_bye(dialog, lhost, lport), note=f"forged BYE to {party}", timeout=BYE_WAIT_S,
                                match=(dialog.call_id, dialog.remote_cseq + 1000, "BYE"))
        answer = ex.final.msg if ex.final is not None else None
        ctx.log(f"  forged BYE from {lhost}:{lport} to {party} at {p.sip_address}: "
                f"{answer.status if answer else 'no answer'}")
        if answer is None:
            ctx.check(CheckResult.error(name, f"{party} did not answer the forged BYE within {BYE_WAIT_S:g} s"))
            return
        with contextlib.suppress(PartyTimeout):  # the expect_connected after it says what happened
            p.wait_event(call_state_is(cid, "DISCONNECTED"), ctx.remaining(3.0), "the forged BYE to end the call",
                         mark)
        ctx.check(CheckResult.of(name, Verdict.PASS, answer.status, "sent", unit="SIP",
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
        name = CheckName("register", subject=self.party)
        with probe_session(ctx, packets=REGISTER_PACKETS, timeout_s=REGISTER_WAIT_S) as ps:
            where = f"{ps.scope.address}:{ctx.target.port}"
            try:
                probe = ps.probe("udp", port=ctx.target.port, source=p.local_ip, user_agent="harness-fault")
            except ProbeConnectError:
                answer, ms = None, 0.0
            else:
                answer, ms = self._register(ctx, probe, p)
        if answer is None:
            ctx.check(CheckResult.of(name, Verdict.FAIL, "no response", 200, op="==", unit="SIP",
                                     detail=f"no answer from {where} to REGISTER within {REGISTER_WAIT_S:g} s"))
            raise StepFailed(f"{name}: the PBX did not answer the REGISTER")
        ok = 200 <= answer.status < 300
        ctx.check(CheckResult.of(name, Verdict.PASS if ok else Verdict.FAIL, answer.status, 200, op="==", unit="SIP",
                                 metrics={"expires": self.expires, "elapsed_ms": ms}, detail=(
                                     f"registered once for {self.expires} s with Contact {p.sip_address}, never "
                                     "refreshed" if ok else f"{answer.status} {answer.reason}")))
        if not ok:
            raise StepFailed(f"{name}: REGISTER answered {answer.status}")
        ctx.log(f"  {self.party} registered once for {self.expires} s (no refresh)")

    def _register(self, ctx: RunContext, probe: SipProbe, p: Party) -> tuple[SipMessage | None, float]:
        """The REGISTER (with the party as its Contact), and its digest answer when challenged: the final
        answer (None: none came) and how long it all took."""
        account = ctx.target.account(ctx.account_of(self.party))
        ruri = f"sip:{ctx.target.sip_domain}"
        call_id, tag = new_call_id(p.local_ip), new_tag()
        fixed = [("Contact", f"<sip:{account.username}@{p.sip_address}>"), ("Expires", str(self.expires))]

        def send(cseq: int, auth: list[tuple[str, str]]) -> SipMessage | None:
            ex = probe.request("REGISTER", ruri, from_user=account.username, from_tag=tag, call_id=call_id, cseq=cseq,
                               headers=fixed + auth, contact=False, timeout=REGISTER_WAIT_S,
                               note=f"REGISTER {self.party} once for {self.expires} s" + (" (digest)" if auth else ""))
            return ex.final.msg if ex.final is not None else None

        t0 = time.monotonic()
        answer = send(1, [])
        challenge = auth_header(answer)
        if challenge is not None:
            header, value = challenge
            answer = send(2, [(header, digest_authorization(value, "REGISTER", ruri, account.auth_username,
                                                            account.password.reveal()))])
        return answer, round((time.monotonic() - t0) * 1000.0, 1)
