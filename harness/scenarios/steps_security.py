"""Security suite steps: the PBX's SIP security posture, probed the way attackers probe it.

Every check is named ``security:<area>:<what>``, carries ``metrics["severity"]`` (what is at stake
when it fails: info, low, medium, high, critical), ``metrics["category"] = "security"`` and
``metrics["evidence"]`` (the numbered exchanges in ``probes-evidence.txt``). Probes are bounded in
packets and time and go only to the target (or loopback); a probe call that gets through is
hung up at once::

    steps:
      - auth_enforced: {account: caller, to: agent}
      - toll_fraud: {account: caller}
      - enumeration: {methods: [REGISTER, INVITE]}
      - header_leakage: {}
      - transport_security: {tls: offered, srtp: offered, plaintext: allowed}
      - weak_passwords: {}
      - robustness: {}
      - brute_force: {attempts: 10}        # last: it may get the probing source blocked
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.probes import ProbeConnectError, ProbeSession, SipProbe
from harness.probes.client import Exchange
from harness.probes.enumeration import Sample, compare, missing_users, sample_of
from harness.probes.leakage import version_leaks
from harness.probes.malformed import PROBES, Addressing, broken_sdp_body, probe_names
from harness.probes.passwords import weakness
from harness.probes.sdp import media
from harness.probes.session import default_port
from harness.probes.uac import CallResult, place_call, register, sdp_offer
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_system import EVIDENCE_FILE, ProbeStep, pick_account, probe_session
from harness.target import Account
from harness.verdict import CheckResult, Verdict
from harness.yamlsrc import Fields

__all__ = ["DEFAULT_EXTERNAL", "SEVERITIES", "finding"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
#: +44 1632 960xxx is reserved by Ofcom for drama: it reaches no one if a PBX does let the call out
DEFAULT_EXTERNAL = "00441632960123"
GUEST_DOMAIN = "guest.invalid"  # RFC 2606: never resolves


def finding(name: str, ok: bool, value: Any, threshold: Any, severity: str, detail: str = "",
            refs: Iterable[int] = (), **metrics: Any) -> CheckResult:
    """A security check: PASS or FAIL, with what is at stake and where its evidence is."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    return CheckResult(f"security:{name}", Verdict.PASS if ok else Verdict.FAIL, value, threshold, "", "==", detail,
                       {"category": "security", "severity": severity,
                        "evidence": {"file": EVIDENCE_FILE, "exchanges": list(refs)}, **metrics})


def finding_error(name: str, detail: str, severity: str, refs: Iterable[int] = ()) -> CheckResult:
    """Nothing could be judged (no answer at all, no callee): ERROR, never a PASS."""
    c = CheckResult.error(f"security:{name}", detail)
    c.metrics = {"category": "security", "severity": severity,
                 "evidence": {"file": EVIDENCE_FILE, "exchanges": list(refs)}}
    return c


def _wrong_password() -> str:
    return "harness-wrong-" + secrets.token_hex(4)


def _callee_uri(ctx: RunContext, to: str | None, avoid: Account | None) -> str:
    """Whom probe calls ring: ``to`` (party, profile number or user), else a party of the scenario
    that is not the probing account, else the profile's agent1, else its first account."""
    if to is not None:
        return ctx.dial_uri(to)
    for name, spec in ctx.scenario.parties.items():
        if avoid is None or spec.account != avoid.name:
            return ctx.dial_uri(name)
    if "agent1" in ctx.target.numbers:
        return ctx.target.aor(ctx.target.numbers["agent1"])
    acc = next(iter(ctx.target.accounts.values()), None)
    return ctx.target.aor(acc.username if acc else "2001")


def _need_account(ctx: RunContext, name: str | None, check: str, severity: str) -> Account | None:
    acc = pick_account(ctx, name)
    if acc is None:
        ctx.check(finding_error(check, "the target profile has no account to probe with", severity))
    return acc


def _open(ctx: RunContext, ps: ProbeSession, check: str, severity: str, **kw: Any) -> SipProbe | None:
    try:
        return ps.probe(**kw)
    except ProbeConnectError as exc:
        ctx.check(finding_error(check, f"cannot reach the PBX: {exc}", severity))
        return None


def _refused(call: CallResult) -> bool:
    """The PBX neither rang nor answered the probe call and gave a final answer."""
    return not call.rang and not call.answered and call.final is not None


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
        acc = _need_account(ctx, self.account, "auth:register_without_credentials", "critical")
        if acc is None:
            return
        callee = _callee_uri(ctx, self.to, acc)
        with probe_session(ctx, packets=80, timeout_s=self.timeout_s, isolated=True) as ps:
            probe = _open(ctx, ps, "auth:register_without_credentials", "critical")
            if probe is None:
                return
            self._register(ctx, probe, acc)
            wrong = _wrong_password()
            for name, sev, kw in (
                    ("auth:invite_without_credentials", "critical", {"from_user": acc.username}),
                    ("auth:invite_wrong_password", "critical",
                     {"from_user": acc.username, "auth": (acc.auth_username, wrong)}),
                    ("auth:invite_from_unknown_domain", "info" if self.allow_guest_calls else "medium",
                     {"from_user": "anonymous", "from_domain": GUEST_DOMAIN})):
                call = place_call(probe, callee, note=name, timeout=ctx.remaining(self.timeout_s), **kw)
                ctx.check(self._judge_call(name, sev, call, callee, name.endswith("unknown_domain")))

    def _register(self, ctx: RunContext, probe: SipProbe, acc: Account) -> None:
        t = ctx.remaining(self.timeout_s)
        reg = register(probe, acc.username, None, note="REGISTER without credentials", timeout=t)
        code = reg.code
        if code is None:
            ctx.check(finding_error("auth:register_without_credentials", "no answer to REGISTER", "critical", reg.refs))
        else:
            if 200 <= code < 300:  # a binding was made without a password: take it away again
                register(probe, acc.username, None, expires=0, note="remove the unauthenticated binding", timeout=t)
            ctx.check(finding("auth:register_without_credentials", code >= 300, code, "401/407 or refused",
                              "critical", f"REGISTER {acc.username} without credentials: {reg.exchanges[-1].summary()}",
                              reg.refs))
        reg = register(probe, acc.username, _wrong_password(), auth_user=acc.auth_username,
                       note="REGISTER with a wrong password", timeout=t)
        code = reg.code
        if code is None:
            ctx.check(finding_error("auth:register_wrong_password", "no answer to REGISTER", "critical", reg.refs))
            return
        if 200 <= code < 300:
            register(probe, acc.username, _wrong_password(), auth_user=acc.auth_username, expires=0,
                     note="remove the binding the wrong password made", timeout=t)
        ctx.check(finding("auth:register_wrong_password", code >= 300 and len(reg.exchanges) == 2, code,
                          "refused", "critical", _reg_detail(reg.exchanges), reg.refs))

    def _judge_call(self, name: str, severity: str, call: CallResult, callee: str, guest: bool) -> CheckResult:
        if call.final is None and not call.rang and not call.answered:
            return finding_error(name, f"no final answer to the INVITE ({call.outcome()})", severity, call.refs)
        ok = _refused(call) or (guest and self.allow_guest_calls)
        detail = f"INVITE {callee}: {call.outcome()}"
        if ok and call.final in (404, 480) and not call.challenged:
            detail += " (refused, but not challenged: is the callee registered?)"
        if not ok:
            detail += "; the call was torn down at once"
        return finding(name, ok, call.final if not call.answered else "answered", "challenged or refused",
                       severity, detail, call.refs, codes=call.codes)


def _reg_detail(exchanges: list[Exchange]) -> str:
    return " -> ".join(e.summary() for e in exchanges)


# ---- toll fraud ------------------------------------------------------------------------------------------
@step("toll_fraud")
@dataclass(frozen=True)
class TollFraud(ProbeStep):
    """Calls to an external-looking number: refused without credentials, refused to an open relay,
    and refused for ``account`` (one that must not dial out). The number is ``number``, else the
    profile's ``numbers.external``, else a fictional +44 1632 960 number. A call that rings is
    cancelled and one that is answered is hung up at once."""

    number: str | None
    account: str | None
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> TollFraud:
        number = f.opt("number", (str, int), None)
        return cls(None if number is None else str(number), f.opt("account", str, None),
                   f.number("timeout_ms", 3000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        number = self.number or ctx.target.numbers.get("external") or DEFAULT_EXTERNAL
        acc = _need_account(ctx, self.account, "toll_fraud:authenticated", "high")
        uri = ctx.target.aor(number)
        with probe_session(ctx, packets=60, timeout_s=self.timeout_s, isolated=True) as ps:
            probe = _open(ctx, ps, "toll_fraud:unauthenticated", "critical")
            if probe is None:
                return
            t = ctx.remaining(self.timeout_s)
            calls = [place_call(probe, uri, from_user="anonymous", from_domain=GUEST_DOMAIN, timeout=t,
                                note="toll fraud: unauthenticated, unknown domain")]
            if acc is not None:
                calls.append(place_call(probe, uri, from_user=acc.username, timeout=t,
                                        note="toll fraud: unauthenticated, spoofing a local user"))
            ctx.check(self._judge("toll_fraud:unauthenticated", "critical", calls, uri))
            relay = f"sip:{number}@pstn.invalid"
            ctx.check(self._judge("toll_fraud:open_relay", "critical", [place_call(
                probe, relay, from_user="anonymous", from_domain=GUEST_DOMAIN, timeout=t,
                note="toll fraud: relay to a foreign domain")], relay))
            if acc is not None:
                call = place_call(probe, uri, from_user=acc.username, auth=(acc.auth_username, acc.password.reveal()),
                                  timeout=t, note=f"toll fraud: authenticated as {acc.name}")
                check = self._judge("toll_fraud:authenticated", "high", [call], uri)
                check.detail = f"as {acc.name}: " + check.detail
                ctx.check(check)

    def _judge(self, name: str, severity: str, calls: list[CallResult], uri: str) -> CheckResult:
        refs = [r for c in calls for r in c.refs]
        if any(c.final is None and not c.rang and not c.answered for c in calls):
            return finding_error(name, f"no final answer to INVITE {uri}", severity, refs)
        ok = all(_refused(c) for c in calls)
        outcomes = "; ".join(c.outcome() for c in calls)
        return finding(name, ok, "refused" if ok else "routed", "refused", severity,
                       f"INVITE {uri}: {outcomes}" + ("" if ok else " (torn down at once)"), refs,
                       codes=[c.codes for c in calls])


# ---- extension enumeration ---------------------------------------------------------------------------
ENUM_METHODS = ("REGISTER", "REGISTER_AUTH", "INVITE", "OPTIONS")


@step("enumeration")
@dataclass(frozen=True)
class Enumeration(ProbeStep):
    """svwar-style: do answers for existing users differ from answers for missing ones?

    For each method, ``users`` existing extensions (from the profile) and as many made-up ones get
    ``rounds`` probes each; the check names each signal that tells them apart (code, reason,
    headers, header values, challenge, body, timing beyond ``timing_ms``). ``REGISTER_AUTH``
    answers the challenge with a wrong password (what a password cracker sees).
    """

    methods: tuple[str, ...]
    users: int
    rounds: int
    timing_ms: float
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Enumeration:
        methods = f.opt("methods", list, ["REGISTER", "REGISTER_AUTH", "INVITE"])
        for m in methods:
            if m not in ENUM_METHODS:
                raise f.fail("methods", f"unknown method {m!r} (known: {', '.join(ENUM_METHODS)})")
        return cls(tuple(methods), f.integer("users", 3, low=1, high=5), f.integer("rounds", 2, low=1, high=5),
                   f.number("timing_ms", 5.0, low=0.1, high=5000), f.number("timeout_ms", 2000, low=100, high=30000)
                   / 1000.0)

    def run(self, ctx: RunContext) -> None:
        existing = [a.username for a in ctx.target.accounts.values()][: self.users]
        if not existing:
            ctx.check(finding_error("enumeration", "the target profile has no accounts to compare with", "medium"))
            return
        known = {a.username for a in ctx.target.accounts.values()} | set(ctx.target.numbers.values())
        missing = missing_users(existing, known, len(existing))
        for method in self.methods:
            # each method from a source of its own: a PBX that bans wrong passwords (REGISTER_AUTH)
            # must not make the next method's probes go unanswered
            with probe_session(ctx, packets=self.rounds * 2 * len(existing) * 12, timeout_s=self.timeout_s,
                               isolated=True) as ps:
                probe = _open(ctx, ps, f"enumeration:{method}", "medium")
                if probe is not None:
                    ctx.check(self._method(ctx, probe, method, existing, missing))

    def _method(self, ctx: RunContext, probe: SipProbe, method: str, existing: list[str],
                missing: list[str]) -> CheckResult:
        name = f"enumeration:{method}"
        samples: list[Sample] = []
        silent = 0
        for _ in range(self.rounds):
            for user, exists in _interleave(existing, missing):
                sample = sample_of(user, exists, self._probe(ctx, probe, method, user))
                samples.append(sample)
                silent = silent + 1 if sample.status is None else 0
                if silent >= 2:  # the PBX stopped answering this source: it blocks the enumeration
                    break
            if silent >= 2:
                break
        refs = [s.ref for s in samples]
        answered = [s for s in samples if s.status is not None]
        facts = {"existing": existing, "missing": missing, "codes": sorted({str(s.status) for s in samples})}
        if not answered:
            return finding_error(name, f"none of {len(samples)} probes was answered", "medium", refs)
        leaks = compare(answered, timing_ms=self.timing_ms)
        blocked = f"; the PBX stopped answering after {len(answered)} probes (it blocks enumeration)" \
            if silent >= 2 else ""
        detail = "; ".join(lk.detail for lk in leaks) or (
            f"{len(answered)} answers, existing {', '.join(existing)} vs made-up {', '.join(missing)}: no difference")
        return finding(name, not leaks, ", ".join(lk.signal for lk in leaks) or ("blocked" if blocked else "none"),
                       "none", "medium", detail + blocked, refs, leaks=[lk.signal for lk in leaks], **facts)

    def _probe(self, ctx: RunContext, probe: SipProbe, method: str, user: str) -> Exchange:
        t = ctx.remaining(self.timeout_s)
        domain = ctx.target.sip_domain
        if method == "REGISTER":
            return register(probe, user, None, note=f"enumeration REGISTER {user}", timeout=t).exchanges[-1]
        if method == "REGISTER_AUTH":
            return register(probe, user, _wrong_password(), note=f"enumeration REGISTER {user} (wrong password)",
                            timeout=t).exchanges[-1]
        if method == "INVITE":
            call = place_call(probe, f"sip:{user}@{domain}", from_user=user, timeout=t,
                              note=f"enumeration INVITE {user}")
            return call.exchanges[0]
        return probe.request("OPTIONS", f"sip:{user}@{domain}", from_user=user, timeout=t,
                             note=f"enumeration OPTIONS {user}")


def _interleave(existing: list[str], missing: list[str]) -> list[tuple[str, bool]]:
    """Alternate the groups so drift over time (a warming cache, load) does not look like a leak."""
    out: list[tuple[str, bool]] = []
    for i in range(max(len(existing), len(missing))):
        if i < len(existing):
            out.append((existing[i], True))
        if i < len(missing):
            out.append((missing[i], False))
    return out


# ---- brute force -----------------------------------------------------------------------------------------
@step("brute_force")
@dataclass(frozen=True)
class BruteForce(ProbeStep):
    """``attempts`` wrong passwords for ``account`` in a row, then the right one: is the source
    slowed down or blocked? Reports what was observed. On loopback every security step probes from an
    address of its own (127.x.y.z), so a ban hits only that step; against a remote PBX the ban hits
    this machine: put this step last in a suite."""

    account: str | None
    attempts: int
    slowdown_factor: float
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> BruteForce:
        return cls(f.opt("account", str, None), f.integer("attempts", 10, low=2, high=50),
                   f.number("slowdown_factor", 3.0, low=1.1, high=1000),
                   f.number("timeout_ms", 1500, low=100, high=10000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        name = "brute_force:protection"
        acc = _need_account(ctx, self.account, name, "high")
        if acc is None:
            return
        with probe_session(ctx, packets=(self.attempts + 2) * 2 * 4, timeout_s=self.timeout_s, isolated=True) as ps:
            source = ps.source
            probe = _open(ctx, ps, name, "high")
            if probe is None:
                return
            times: list[float] = []
            blocked_at, blocked_how, refs = None, "", []
            t_start = time.monotonic()
            for i in range(1, self.attempts + 1):
                reg = register(probe, acc.username, _wrong_password(), auth_user=acc.auth_username,
                               note=f"brute force {i}/{self.attempts}", timeout=ctx.remaining(self.timeout_s))
                refs += reg.refs
                last = reg.exchanges[-1]
                if last.status is None:
                    blocked_at, blocked_how = i, "no answer (dropped)"
                    break
                if 200 <= last.status < 300:
                    blocked_how = "a wrong password was ACCEPTED"
                    register(probe, acc.username, "", expires=0, note="remove that binding",
                             timeout=ctx.remaining(self.timeout_s))
                    break
                if last.status not in (401, 407):
                    blocked_at, blocked_how = i, f"{last.status} {last.final.msg.reason if last.final else ''}".strip()
                    break
                if last.final_ms is not None:
                    times.append(last.final_ms)
            elapsed = time.monotonic() - t_start
            right = register(probe, acc.username, acc.password.reveal(), auth_user=acc.auth_username,
                             note="the right password after the wrong ones", timeout=ctx.remaining(self.timeout_s))
            refs += right.refs
            if right.code == 200:
                register(probe, acc.username, acc.password.reveal(), auth_user=acc.auth_username, expires=0,
                         note="unREGISTER", timeout=ctx.remaining(self.timeout_s))
        ctx.check(self._judge(acc, times, blocked_at, blocked_how, right.code, elapsed, refs, source))

    def _judge(self, acc: Account, times: list[float], blocked_at: int | None, blocked_how: str,
               right_code: int | None, elapsed: float, refs: list[int], source: str | None) -> CheckResult:
        k = min(3, len(times) // 2)
        slowdown = (statistics.median(times[-k:]) / max(0.001, statistics.median(times[:k]))) if k else 1.0
        slowed = k > 0 and slowdown >= self.slowdown_factor
        locked = right_code != 200
        metrics = {"attempts": len(times) + (1 if blocked_at else 0), "source": source or "this machine",
                   "slowdown": round(slowdown, 2), "auth_ms": times, "right_password_code": right_code}
        if blocked_at is not None:
            value = f"blocked after {blocked_at - 1} wrong passwords"
            detail = f"attempt {blocked_at} got {blocked_how}"
        elif slowed:
            value = f"slowed x{slowdown:.1f}"
            before, after = statistics.median(times[:k]), statistics.median(times[-k:])
            detail = f"answers went from {before:.1f} ms to {after:.1f} ms"
        elif locked:
            value = "account locked"
            detail = f"the right password then got {right_code or 'no answer'}"
        else:
            value = "none"
            detail = (f"{len(times)} wrong passwords in {elapsed:.2f} s, each answered "
                      f"{'401/407' if times else '?'} in {statistics.median(times):.1f} ms median"
                      if times else "no attempt was answered")
        if right_code == 200:
            detail += "; the right password was still accepted from the same source right after"
        elif blocked_at is not None or locked:
            detail += f"; the right password then got {right_code or 'no answer'}"
        ok = blocked_at is not None or slowed or locked
        if blocked_how.startswith("a wrong password"):
            ok, value, detail = False, "wrong password accepted", blocked_how
        return finding("brute_force:protection", ok, value, "slowed or blocked", "high",
                       f"{acc.name}: " + detail, refs, **metrics)


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
            probe = _open(ctx, ps, "header_leakage", "medium")
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
            ctx.check(finding_error("header_leakage", "the PBX answered none of the probes", "medium", refs))
            return
        leaks = version_leaks(headers)
        severity = "medium" if any(lk.severity == "medium" for lk in leaks) else "low"
        shown = sorted({f"{h}: {v}" for h, v in headers if h.lower() in ("server", "user-agent")})
        ctx.check(finding("header_leakage", not leaks, "; ".join(f"{lk.header}: {lk.value}" for lk in leaks) or "none",
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
            ctx.check(finding_error("passwords:profile", "the target profile has no accounts", "high"))
            return
        weak = [(a, why) for a in accounts
                if (why := weakness(a.auth_username, a.password.reveal(), min_length=self.min_length))]
        ctx.check(finding("passwords:profile", not weak, len(weak), 0, "high",
                          "; ".join(f"{a.name} ({a.username}): {why}" for a, why in weak)
                          or f"{len(accounts)} accounts checked", weak_accounts=[a.name for a, _ in weak]))


# ---- transport security ----------------------------------------------------------------------------------
POLICY = ("required", "offered", "optional")


@step("transport_security")
@dataclass(frozen=True)
class TransportSecurity(ProbeStep):
    """Is TLS offered? Is SRTP (SDES) offered, or required? Is plaintext SIP accepted?

    ``tls`` and ``srtp`` say what the policy wants (required, offered, optional; default offered);
    ``plaintext: forbidden`` (a TLS-only policy) makes an answer over UDP or TCP a finding. The SRTP
    probe calls go to ``to`` (default: a party of the scenario) as ``account``, over TLS when the PBX
    offers it, and are hung up at once.
    """

    tls: str
    srtp: str
    plaintext: str
    tls_port: int | None
    account: str | None
    to: str | None
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> TransportSecurity:
        to = f.opt("to", (str, int), None)
        return cls(f.choice("tls", POLICY, "offered"), f.choice("srtp", POLICY, "offered"),
                   f.choice("plaintext", ("allowed", "forbidden"), "allowed"),
                   f.integer("tls_port", None, low=1, high=65535), f.opt("account", str, None),
                   None if to is None else str(to), f.number("timeout_ms", 3000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        tls_port = self.tls_port or default_port(ctx.target, "tls")
        with probe_session(ctx, packets=60, timeout_s=self.timeout_s, isolated=True) as ps:
            tls_probe = self._tls(ctx, ps, tls_port)
            self._plaintext(ctx, ps)
            acc = _need_account(ctx, self.account, "transport:srtp_offered", "medium")
            if acc is None:
                return
            probe = tls_probe or _open(ctx, ps, "transport:srtp_offered", "medium")
            if probe is None:
                return
            callee = _callee_uri(ctx, self.to, acc)
            self._srtp(ctx, probe, acc, callee, over_tls=tls_probe is not None)

    def _tls(self, ctx: RunContext, ps: ProbeSession, port: int) -> SipProbe | None:
        severity = {"required": "high", "offered": "medium", "optional": "info"}[self.tls]
        try:
            probe = ps.probe("tls", port=port)
        except ProbeConnectError as exc:
            ctx.check(finding("transport:tls_offered", self.tls == "optional", "not offered", "offered", severity,
                              f"no TLS at {ps.scope.address}:{port}: {exc.reason}; SIP and SDES keys travel in clear"))
            return None
        ex = probe.request("OPTIONS", f"sip:{ctx.target.host}:{port};transport=tls", from_user="probe",
                           timeout=ctx.remaining(self.timeout_s), note="TLS offered?")
        ok = ex.rtt_ms is not None
        ctx.check(finding("transport:tls_offered", ok or self.tls == "optional", "offered" if ok else "handshake only",
                          "offered", severity, f"TLS at {ps.scope.address}:{port}: {ex.summary()}", [ex.ref]))
        return probe if ok else None

    def _plaintext(self, ctx: RunContext, ps: ProbeSession) -> None:
        forbidden = self.plaintext == "forbidden"
        accepted, refs, notes = [], [], []
        for tp in ("udp", "tcp"):
            try:
                probe = ps.probe(tp)
            except ProbeConnectError as exc:
                notes.append(f"{tp.upper()}: {exc.reason}")
                continue
            ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe", timeout=ctx.remaining(self.timeout_s),
                               note=f"plaintext {tp.upper()} accepted?")
            refs.append(ex.ref)
            notes.append(f"{tp.upper()}: {ex.summary()}")
            if ex.status is not None and ex.status < 400:
                accepted.append(tp.upper())
        ok = not (forbidden and accepted)
        ctx.check(finding("transport:plaintext_sip", ok, ", ".join(accepted) or "refused",
                          "refused" if forbidden else "allowed by policy", "high" if forbidden else "info",
                          "; ".join(notes), refs))

    def _srtp(self, ctx: RunContext, probe: SipProbe, acc: Account, callee: str, *, over_tls: bool) -> None:
        auth = (acc.auth_username, acc.password.reveal())
        t = ctx.remaining(self.timeout_s)
        host = probe.local[0]
        port = 20000 + 2 * secrets.randbelow(10000)
        via = "over TLS" if over_tls else f"over {probe.channel.transport.upper()} (keys in clear: no TLS)"
        secure = place_call(probe, callee, from_user=acc.username, auth=auth, body=sdp_offer(host, port, srtp=True),
                            cancel_on_ring=False, timeout=t, note="SRTP offered (RTP/SAVP + a=crypto)?")
        plain = place_call(probe, callee, from_user=acc.username, auth=auth, body=sdp_offer(host, port, srtp=False),
                           cancel_on_ring=False, timeout=t, note="SRTP required (plain RTP/AVP refused)?")
        for call in (secure, plain):
            if call.final in (404, 480, 408) or call.final is None:
                ctx.check(finding_error("transport:srtp_offered",
                                        f"the callee {callee} did not take the probe call ({call.outcome()}): "
                                        "SRTP cannot be judged", "medium", secure.refs + plain.refs))
                return
        answer = media(secure.answer.body) if secure.answer is not None else []
        srtp_ok = any(m.srtp for m in answer)
        sev_offer = {"required": "high", "offered": "medium", "optional": "info"}[self.srtp]
        ctx.check(finding("transport:srtp_offered", srtp_ok or self.srtp == "optional",
                          "accepted" if srtp_ok else "not accepted", "accepted", sev_offer,
                          f"SDES offer {via}: {secure.outcome()}" +
                          (f"; answer {', '.join(m.proto for m in answer)}" if answer else ""),
                          secure.refs))
        plain_refused = not plain.answered
        ctx.check(finding("transport:srtp_required", plain_refused or self.srtp != "required",
                          "required" if plain_refused else "not required", "required" if self.srtp == "required"
                          else f"{self.srtp} by policy", "high" if self.srtp == "required" else "info",
                          f"plain RTP offer: {plain.outcome()}", plain.refs))


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
            probe = _open(ctx, ps, "robustness:baseline", "high")
            if probe is None:
                return
            base = probe.request("OPTIONS", probe.server_uri(), from_user="probe", note="robustness: alive before?",
                                 timeout=ctx.remaining(self.alive_timeout_s))
            if base.rtt_ms is None:
                ctx.check(finding_error("robustness:baseline", "the PBX does not answer OPTIONS before any probe",
                                        "high", [base.ref]))
                return
            acc = pick_account(ctx, self.account)
            dead_after = ""
            for p in chosen:
                name = f"robustness:{p.name}"
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
            callee = _callee_uri(ctx, self.to, acc)
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
