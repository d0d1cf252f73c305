"""Security suite steps: the PBX's SIP security posture, probed the way attackers probe it.

Every check is named ``security:<area>:<what>``, carries ``metrics["severity"]`` (what is at stake
when it fails: info, low, medium, high, critical), ``metrics["category"] = "security"`` and
``metrics["evidence"]`` (the numbered exchanges in ``probes-evidence.txt``). Probes are bounded in
packets and time and go only to the target (or loopback); a probe call that gets through is
hung up at once. A PASS needs positive evidence: what could not be measured is an ERROR::

    steps:
      - auth_enforced: {account: caller, to: agent}
      - toll_fraud: {account: caller}                 # steps_security_tollfraud.py
      - enumeration: {methods: [REGISTER, INVITE]}    # steps_security_enumeration.py
      - header_leakage: {}
      - transport_security: {tls: offered, srtp: offered, plaintext: allowed}   # steps_security_transport.py
      - weak_passwords: {}
      - robustness: {}
      - brute_force: {attempts: 10}        # last: it may get the probing source blocked (steps_security_bruteforce.py)

The shared helpers (:func:`finding`, :func:`finding_error`, :func:`security_check`) are in
``steps_security_base.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.target import Account
from harness.contracts.verdict import CheckResult
from harness.contracts.yamlsrc import Fields
from harness.probes import ProbeConnectError, ProbeSession, SipProbe
from harness.probes.client import Exchange
from harness.probes.leakage import version_leaks
from harness.probes.malformed import PROBES, Addressing, broken_sdp_body, probe_names
from harness.probes.passwords import weakness
from harness.probes.probe_uac import CallResult, place_call, register
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_probe import ProbeStep, pick_account, probe_session
from harness.scenarios.steps_security_base import (
    GUEST_DOMAIN,
    callee_uri,
    finding,
    finding_error,
    need_account,
    open_probe,
    security_check,
    wrong_password,
)

__all__ = ["AuthEnforced", "HeaderLeakage", "Robustness", "WeakPasswords"]

REGISTER_WITHOUT_CREDENTIALS = security_check("auth", "register_without_credentials")
REGISTER_WRONG_PASSWORD = security_check("auth", "register_wrong_password")
HEADER_LEAKAGE = security_check("header_leakage")
PASSWORDS = security_check("passwords", "profile")
ROBUSTNESS_BASELINE = security_check("robustness", "baseline")


def _refused(call: CallResult) -> bool:
    """The PBX neither rang nor answered the probe call and gave a final answer of its own (not the 487
    that follows the harness's CANCEL)."""
    return not call.rang and not call.answered and not call.cancelled and call.final is not None


# ---- authentication ----------------------------------------------------------------------------------
@step("auth_enforced")
@dataclass(frozen=True)
class AuthEnforced(ProbeStep):
    """Unauthenticated REGISTER and INVITE are challenged or refused; a wrong password is refused.

    The INVITEs go to ``to`` (default: a party of the scenario): a callee that is registered makes
    the probe meaningful, since a PBX that skips authentication would ring it. ``allow_guest_calls``
    accepts calls from unknown domains (a PBX that takes calls from anywhere by design).
    """

    account: str | None
    to: str | None
    allow_guest_calls: bool
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> AuthEnforced:
        to = f.opt("to", (str, int), None)
        return cls(f.opt("account", str, None), None if to is None else str(to),
                   f.opt("allow_guest_calls", bool, False), f.number("timeout_ms", 3000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        acc = need_account(ctx, self.account, REGISTER_WITHOUT_CREDENTIALS, "critical")
        if acc is None:
            return
        callee = callee_uri(ctx, self.to, acc)
        with probe_session(ctx, packets=80, timeout_s=self.timeout_s, isolated=True) as ps:
            probe = open_probe(ctx, ps, REGISTER_WITHOUT_CREDENTIALS, "critical")
            if probe is None:
                return
            self._register(ctx, probe, acc)
            wrong = wrong_password()
            for what, sev, kw in (
                    ("invite_without_credentials", "critical", {"from_user": acc.username}),
                    ("invite_wrong_password", "critical",
                     {"from_user": acc.username, "auth": (acc.auth_username, wrong)}),
                    ("invite_from_unknown_domain", "info" if self.allow_guest_calls else "medium",
                     {"from_user": "anonymous", "from_domain": GUEST_DOMAIN})):
                name = security_check("auth", what)
                call = place_call(probe, callee, note=f"auth:{what}", timeout=ctx.remaining(self.timeout_s), **kw)
                ctx.check(self._judge_call(name, sev, call, callee, what.endswith("unknown_domain")))

    def _register(self, ctx: RunContext, probe: SipProbe, acc: Account) -> None:
        t = ctx.remaining(self.timeout_s)
        reg = register(probe, acc.username, None, note="REGISTER without credentials", timeout=t)
        code = reg.code
        if code is None:
            ctx.check(finding_error(REGISTER_WITHOUT_CREDENTIALS, "no answer to REGISTER", "critical", reg.refs))
        else:
            if 200 <= code < 300:  # a binding was made without a password: take it away again
                register(probe, acc.username, None, expires=0, note="remove the unauthenticated binding", timeout=t)
            ctx.check(finding(REGISTER_WITHOUT_CREDENTIALS, code >= 300, code, "401/407 or refused",
                              "critical", f"REGISTER {acc.username} without credentials: {reg.exchanges[-1].summary()}",
                              reg.refs))
        reg = register(probe, acc.username, wrong_password(), auth_user=acc.auth_username,
                       note="REGISTER with a wrong password", timeout=t)
        code = reg.code
        if code is None:
            ctx.check(finding_error(REGISTER_WRONG_PASSWORD, "no answer to REGISTER", "critical", reg.refs))
            return
        if 200 <= code < 300:
            register(probe, acc.username, wrong_password(), auth_user=acc.auth_username, expires=0,
                     note="remove the binding the wrong password made", timeout=t)
        ctx.check(finding(REGISTER_WRONG_PASSWORD, code >= 300 and len(reg.exchanges) == 2, code,
                          "refused", "critical", _reg_detail(reg.exchanges), reg.refs))

    def _judge_call(self, name: CheckName, severity: str, call: CallResult, callee: str, guest: bool) -> CheckResult:
        if call.final is None and not call.rang and not call.answered:
            return finding_error(name, f"no final answer to the INVITE ({call.outcome()})", severity, call.refs)
        ok = _refused(call) or (guest and self.allow_guest_calls)
        detail = f"INVITE {callee}: {call.outcome()}"
        if call.cancelled and not call.rang and not call.answered:
            detail = (f"INVITE {callee}: not challenged or refused within {self.timeout_s:g} s: the PBX took the "
                      f"call ({', '.join(str(c) for c in call.codes if c < 200) or 'no provisional answer'}) and "
                      "the harness cancelled it (its 487 is no refusal)")
        elif ok and call.final in (404, 480) and not call.challenged:
            detail += " (refused, but not challenged: is the callee registered?)"
        elif not ok:
            detail += "; the call was torn down at once"
        value = "answered" if call.answered else ("not refused" if call.cancelled and not call.rang else call.final)
        return finding(name, ok, value, "challenged or refused", severity, detail, call.refs, codes=call.codes)


def _reg_detail(exchanges: list[Exchange]) -> str:
    return " -> ".join(e.summary() for e in exchanges)



# ---- header leakage --------------------------------------------------------------------------------------
@step("header_leakage")
@dataclass(frozen=True)
class HeaderLeakage(ProbeStep):
    """Server / User-Agent (and similar) headers of the PBX's answers must not name product versions."""

    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> HeaderLeakage:
        return cls(f.number("timeout_ms", 2000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        with probe_session(ctx, packets=24, timeout_s=self.timeout_s, isolated=True) as ps:
            probe = open_probe(ctx, ps, HEADER_LEAKAGE, "medium")
            if probe is None:
                return
            t = ctx.remaining(self.timeout_s)
            exchanges = [probe.request("OPTIONS", probe.server_uri(), from_user="probe", note="headers: OPTIONS",
                                       timeout=t)]
            exchanges += register(probe, "probe", None, note="headers: REGISTER", timeout=t).exchanges
            exchanges += place_call(probe, ctx.target.aor("probe"), from_user="probe", timeout=t,
                                    note="headers: INVITE").exchanges
        headers = [h for e in exchanges for r in e.replies for h in r.msg.headers]
        refs = [e.ref for e in exchanges]
        if not any(e.replies for e in exchanges):
            ctx.check(finding_error(HEADER_LEAKAGE, "the PBX answered none of the probes", "medium", refs))
            return
        leaks = version_leaks(headers)
        severity = "medium" if any(lk.severity == "medium" for lk in leaks) else "low"
        shown = sorted({f"{h}: {v}" for h, v in headers if h.lower() in ("server", "user-agent")})
        ctx.check(finding(HEADER_LEAKAGE, not leaks, "; ".join(f"{lk.header}: {lk.value}" for lk in leaks) or "none",
                          "no product or version", severity,
                          ("reveals " + ", ".join(f"{lk.product or 'product'} {lk.version}".strip() for lk in leaks))
                          if leaks else f"seen: {'; '.join(shown) or 'no Server/User-Agent header'}", refs,
                          headers=shown))


# ---- weak passwords (offline) ----------------------------------------------------------------------------
@step("weak_passwords")
@dataclass(frozen=True)
class WeakPasswords:
    """The profile's passwords against what SIP scanners try first (no packet is sent)."""

    min_length: int

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> WeakPasswords:
        return cls(f.integer("min_length", 10, low=4, high=64))

    def run(self, ctx: RunContext) -> None:
        accounts = list(ctx.target.accounts.values())
        if not accounts:
            ctx.check(finding_error(PASSWORDS, "the target profile has no accounts", "high"))
            return
        weak = [(a, why) for a in accounts
                if (why := weakness(a.auth_username, a.password.reveal(), min_length=self.min_length))]
        ctx.check(finding(PASSWORDS, not weak, len(weak), 0, "high",
                          "; ".join(f"{a.name} ({a.username}): {why}" for a, why in weak)
                          or f"{len(accounts)} accounts checked", weak_accounts=[a.name for a, _ in weak]))


# ---- robustness ------------------------------------------------------------------------------------------
@step("robustness")
@dataclass(frozen=True)
class Robustness(ProbeStep):
    """A fixed set of malformed and oversized messages; after each, the PBX must still answer OPTIONS.

    Each probe's own answer is recorded (a 4xx or silence are both fine). ``probes`` picks a subset
    by name; the broken SDP goes, authenticated as ``account``, to ``to`` so that it is parsed.
    """

    probes: tuple[str, ...]
    account: str | None
    to: str | None
    response_timeout_s: float
    alive_timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Robustness:
        names = f.opt("probes", list, list(probe_names()))
        for n in names:
            if n not in probe_names():
                raise f.fail("probes", f"unknown probe {n!r} (known: {', '.join(probe_names())})")
        to = f.opt("to", (str, int), None)
        return cls(tuple(names), f.opt("account", str, None), None if to is None else str(to),
                   f.number("response_timeout_ms", 500, low=50, high=10000) / 1000.0,
                   f.number("alive_timeout_ms", 2000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        chosen = [p for p in PROBES if p.name in self.probes]
        with probe_session(ctx, packets=len(chosen) * 12 + 8, timeout_s=self.alive_timeout_s, isolated=True) as ps:
            probe = open_probe(ctx, ps, ROBUSTNESS_BASELINE, "high")
            if probe is None:
                return
            base = probe.request("OPTIONS", probe.server_uri(), from_user="probe", note="robustness: alive before?",
                                 timeout=ctx.remaining(self.alive_timeout_s))
            if base.rtt_ms is None:
                ctx.check(finding_error(ROBUSTNESS_BASELINE, "the PBX does not answer OPTIONS before any probe",
                                        "high", [base.ref]))
                return
            acc = pick_account(ctx, self.account)
            dead_after = ""
            for p in chosen:
                name = security_check("robustness", p.name)
                if dead_after:
                    ctx.check(finding_error(name, f"not run: the PBX stopped answering after {dead_after}", "high"))
                    continue
                response, refs = self._send(ctx, ps, probe, p, acc)
                alive, alive_ms, alive_ref, probe = self._alive(ctx, ps, probe)
                refs.append(alive_ref)
                if not alive:
                    dead_after = p.name
                ctx.check(finding(name, alive, response, "still answers OPTIONS", "high",
                                  f"{p.what}: {response}; OPTIONS after: "
                                  + (f"answered in {alive_ms} ms" if alive else "NO ANSWER"), refs,
                                  response=response))

    def _send(self, ctx: RunContext, ps: ProbeSession, probe: SipProbe, p: Any, acc: Account | None
              ) -> tuple[str, list[int]]:
        if p.name == "broken_sdp" and acc is not None:
            callee = callee_uri(ctx, self.to, acc)
            call = place_call(probe, callee, from_user=acc.username, auth=(acc.auth_username, acc.password.reveal()),
                              body=broken_sdp_body(), timeout=ctx.remaining(self.alive_timeout_s),
                              note="robustness: broken SDP (authenticated)")
            return call.outcome(), call.refs
        host, port = probe.local
        a = Addressing(host, port, probe.channel.via_transport, ctx.target.host, probe.channel.remote[1],
                       ctx.target.sip_domain, 65000 if probe.channel.transport == "udp" else 200000)
        ex = probe.transact(p.build(a), note=f"robustness: {p.name}", timeout=ctx.remaining(self.response_timeout_s),
                            retransmit=False)
        return (ex.summary() if ex.replies or ex.error else "no answer (dropped)"), [ex.ref]

    def _alive(self, ctx: RunContext, ps: ProbeSession, probe: SipProbe) -> tuple[bool, float | None, int, SipProbe]:
        ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe", note="robustness: still alive?",
                           timeout=ctx.remaining(self.alive_timeout_s))
        if ex.error and probe.channel.transport != "udp":  # the server closed our connection: try a new one
            try:
                probe = ps.probe(probe.channel.transport)
            except ProbeConnectError:
                return False, None, ex.ref, probe
            ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe", note="robustness: still alive?",
                               timeout=ctx.remaining(self.alive_timeout_s))
        return ex.rtt_ms is not None, ex.rtt_ms, ex.ref, probe
