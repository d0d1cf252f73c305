"""The ``enumeration`` step: can an attacker tell existing extensions from made-up ones?

::

    - enumeration: {methods: [REGISTER, REGISTER_AUTH, INVITE], users: 3, rounds: 2}

Unanswered probes count: a PBX that answers real extensions and stays silent for made-up ones lets
an attacker enumerate just as a 404 does (the ``silence`` signal, FAIL). Only silence that hits both
groups alike at the end of a run (a PBX that stopped answering the probing source) is set aside as
the PBX blocking the enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.contracts.verdict import CheckResult
from harness.contracts.yamlsrc import Fields
from harness.probes import SipProbe
from harness.probes.client import Exchange
from harness.probes.enumeration import Sample, compare, missing_users, sample_of
from harness.probes.probe_uac import place_call, register
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_probe import ProbeStep, probe_session
from harness.scenarios.steps_security_base import finding, finding_error, open_probe, security_check, wrong_password

__all__ = ["ENUM_METHODS", "Enumeration", "blocked_tail"]

ENUM_METHODS = ("REGISTER", "REGISTER_AUTH", "INVITE", "OPTIONS")


def blocked_tail(samples: list[Sample], at_least: int = 2) -> int:
    """How many probes at the end went unanswered for existing and made-up users alike (a PBX that
    stopped answering the source: it blocks the enumeration); 0 when the silence is not like that."""
    n = 0
    for s in reversed(samples):
        if s.status is not None:
            break
        n += 1
    tail = samples[len(samples) - n:]
    if n >= at_least and {s.exists for s in tail} == {True, False}:
        return n
    return 0


@step("enumeration")
@dataclass(frozen=True)
class Enumeration(ProbeStep):
    """svwar-style: do answers for existing users differ from answers for missing ones?

    For each method, ``users`` existing extensions (from the profile) and as many made-up ones get
    up to ``rounds`` probes each; the check names each signal that tells them apart (silence, code,
    reason, headers, header values, challenge, body, timing beyond ``timing_ms``). ``REGISTER_AUTH``
    answers the challenge with a wrong password (what a password cracker sees). When silence alone
    already tells the groups apart after a round, the next rounds are not run (each silent probe
    costs ``timeout_ms``).
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
            ctx.check(finding_error(security_check("enumeration"), "the target profile has no accounts to compare with",
                                    "medium"))
            return
        known = {a.username for a in ctx.target.accounts.values()} | set(ctx.target.numbers.values())
        missing = missing_users(existing, known, len(existing))
        for method in self.methods:
            # each method from a source of its own: a PBX that bans wrong passwords (REGISTER_AUTH)
            # must not make the next method's probes go unanswered
            with probe_session(ctx, packets=self.rounds * 2 * len(existing) * 12, timeout_s=self.timeout_s,
                               isolated=True) as ps:
                probe = open_probe(ctx, ps, security_check("enumeration", method), "medium")
                if probe is not None:
                    ctx.check(self._method(ctx, probe, method, existing, missing))

    def _method(self, ctx: RunContext, probe: SipProbe, method: str, existing: list[str],
                missing: list[str]) -> CheckResult:
        name = security_check("enumeration", method)
        samples: list[Sample] = []
        stopped = ""
        for r in range(1, self.rounds + 1):
            for user, exists in _interleave(existing, missing):
                samples.append(sample_of(user, exists, self._probe(ctx, probe, method, user)))
                if blocked_tail(samples):
                    break
            if blocked_tail(samples):
                break
            if r < self.rounds and any(lk.signal == "silence" for lk in compare(samples, timing_ms=self.timing_ms)):
                rest = f"round {r + 1}" if r + 1 == self.rounds else f"rounds {r + 1}-{self.rounds}"
                stopped = f"; {rest} not run: silence already tells the groups apart"
                break
        refs = [s.ref for s in samples]
        tail = blocked_tail(samples)
        judged = samples[: len(samples) - tail]
        answered = [s for s in judged if s.status is not None]
        silent = len(judged) - len(answered)
        facts = {"existing": existing, "missing": missing, "probes": len(samples), "unanswered": silent + tail,
                 "codes": sorted({"no answer" if s.status is None else str(s.status) for s in samples})}
        if not answered:
            return finding_error(name, f"none of {len(samples)} probes was answered (each waited "
                                       f"{self.timeout_s:g} s): nothing to compare", "medium", refs,
                                 "none", **facts)
        leaks = compare(judged, timing_ms=self.timing_ms)
        blocked = (f"; the PBX stopped answering after {len(judged)} probes ({tail} unanswered in a row, real and "
                   "made-up users alike: it blocks enumeration)") if tail else ""
        counted = f" ({silent} unanswered, counted)" if silent else ""
        detail = "; ".join(lk.detail for lk in leaks) or (
            f"{len(judged)} probes{counted}, existing {', '.join(existing)} vs made-up {', '.join(missing)}: "
            "no difference")
        return finding(name, not leaks, ", ".join(lk.signal for lk in leaks) or ("blocked" if tail else "none"),
                       "none", "medium", detail + stopped + blocked, refs,
                       leaks=[lk.signal for lk in leaks], **facts)

    def _probe(self, ctx: RunContext, probe: SipProbe, method: str, user: str) -> Exchange:
        t = ctx.remaining(self.timeout_s)
        domain = ctx.target.sip_domain
        if method == "REGISTER":
            return register(probe, user, None, note=f"enumeration REGISTER {user}", timeout=t).exchanges[-1]
        if method == "REGISTER_AUTH":
            return register(probe, user, wrong_password(), note=f"enumeration REGISTER {user} (wrong password)",
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
