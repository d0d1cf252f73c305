"""The ``toll_fraud`` step: calls to an outside number must be refused, in every dial format.

::

    - toll_fraud: {account: caller}
    - toll_fraud: {number: "+441632960123", formats: ["00", "+"], refuse_codes: [403, 404, 480]}

Three checks: ``toll_fraud:unauthenticated`` (no credentials, from an unknown domain and spoofing a
local user), ``toll_fraud:open_relay`` (to a foreign domain) and ``toll_fraud:authenticated`` (as
``account``, one that must not dial out). Each dial format (``00``, ``+``, ``011``, ``9``; see
:mod:`harness.probes.tollfraud`) is probed; a call that rings is cancelled and one that is answered is
hung up at once. Refused means a final answer in the refusal policy (``refuse_codes``); a call the
PBX kept without a final answer for ``timeout_ms`` is "not refused" (FAIL), silence is ERROR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.target import Account
from harness.contracts.verdict import CheckResult
from harness.contracts.yamlsrc import Fields
from harness.probes import SipProbe
from harness.probes.probe_uac import CallResult, place_call
from harness.probes.tollfraud import FORMATS, Outcome, RefusalPolicy, classify, dial_strings, verdict_of
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_probe import ProbeStep, probe_session
from harness.scenarios.steps_security_base import (
    DEFAULT_EXTERNAL,
    GUEST_DOMAIN,
    finding,
    finding_error,
    need_account,
    open_probe,
    security_check,
)

__all__ = ["TollFraud"]

UNAUTHENTICATED = security_check("toll_fraud", "unauthenticated")
OPEN_RELAY = security_check("toll_fraud", "open_relay")
AUTHENTICATED = security_check("toll_fraud", "authenticated")


@dataclass
class _Probed:
    """What one check's calls met, format by format."""

    calls: list[tuple[str, str, CallResult, Outcome]] = field(default_factory=list)  # (format, what, call, outcome)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (call, why it was not placed)

    def skipped_text(self) -> list[str]:
        by_why: dict[str, list[str]] = {}
        for label, why in self.skipped:
            by_why.setdefault(why, []).append(label)
        return [f"{len(labels)} more call{'s' if len(labels) > 1 else ''} not probed ({why})"
                for why, labels in by_why.items()]

    @property
    def refs(self) -> list[int]:
        return [r for _, _, c, _ in self.calls for r in c.refs]


@step("toll_fraud")
@dataclass(frozen=True)
class TollFraud(ProbeStep):
    """Calls to an external-looking number in several dial formats: refused without credentials,
    refused to an open relay, and refused for ``account`` (one that must not dial out). The number
    is ``number``, else the profile's ``numbers.external``, else a fictional +44 1632 960 number."""

    number: str | None
    account: str | None
    timeout_s: float
    formats: tuple[str, ...] = FORMATS
    refuse_codes: tuple[int, ...] | None = None
    max_s: float = 40.0

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> TollFraud:
        number = f.opt("number", (str, int), None)
        formats = f.opt("formats", list, list(FORMATS))
        for fmt in formats:
            if not isinstance(fmt, str):
                raise f.fail("formats", f"write each format as a quoted string ('00', '+', '011', '9'), got {fmt!r}")
            if fmt not in FORMATS:
                raise f.fail("formats", f"unknown dial format {fmt!r} (known: {', '.join(FORMATS)})")
        if not formats:
            raise f.fail("formats", "needs at least one dial format")
        codes = f.opt("refuse_codes", list, None)
        if codes is not None:
            for c in codes:
                if not isinstance(c, int) or isinstance(c, bool) or not 300 <= c <= 699:
                    raise f.fail("refuse_codes", f"must be SIP final codes 300..699, got {c!r}")
            if not codes:
                raise f.fail("refuse_codes", "needs at least one code")
        return cls(None if number is None else str(number), f.opt("account", str, None),
                   f.number("timeout_ms", 3000, low=100, high=30000) / 1000.0, tuple(formats),
                   None if codes is None else tuple(codes), f.number("max_s", 40, low=1, high=300))

    @property
    def policy(self) -> RefusalPolicy:
        """The step's own ``refuse_codes`` (or the default)."""
        return RefusalPolicy.of(self.refuse_codes)

    def policy_for(self, ctx: RunContext) -> RefusalPolicy:
        """The step's ``refuse_codes``, else the target profile's ``behaviour.toll_refuse_codes``, else the default."""
        return RefusalPolicy.of(self.refuse_codes if self.refuse_codes is not None else ctx.target.toll_refuse_codes)

    def run(self, ctx: RunContext) -> None:
        number = self.number or ctx.target.numbers.get("external") or DEFAULT_EXTERNAL
        dials = dial_strings(number, self.formats)
        acc = need_account(ctx, self.account, AUTHENTICATED, "high")
        calls = len(dials) * (3 if acc is not None else 1) + 1
        with probe_session(ctx, packets=calls * 12, timeout_s=self.timeout_s, isolated=True) as ps:
            probe = open_probe(ctx, ps, UNAUTHENTICATED, "critical")
            if probe is None:
                return
            t_end = time.monotonic() + self.max_s
            guest: dict[str, Any] = {"from_user": "anonymous", "from_domain": GUEST_DOMAIN}
            unauth: list[tuple[str, dict[str, Any]]] = [("unknown domain", guest)]
            if acc is not None:
                unauth.append((f"spoofing {acc.username}", {"from_user": acc.username}))
            got = self._probe(ctx, probe, [(fmt, ctx.target.aor(d)) for fmt, d in dials], unauth,
                              authenticated=False, t_end=t_end)
            ctx.check(self._judge(UNAUTHENTICATED, "critical", got, authenticated=False,
                                  policy=self.policy_for(ctx)))
            fmt0, dial0 = dials[0]
            got = self._probe(ctx, probe, [(fmt0, f"sip:{dial0}@pstn.invalid")], [("unknown domain", guest)],
                              authenticated=False, t_end=t_end)
            ctx.check(self._judge(OPEN_RELAY, "critical", got, authenticated=False,
                                  policy=self.policy_for(ctx)))
            if acc is not None:
                got = self._probe(ctx, probe, [(fmt, ctx.target.aor(d)) for fmt, d in dials],
                                  [(f"as {acc.name}", self._auth(acc))], authenticated=True, t_end=t_end)
                check = self._judge(AUTHENTICATED, "high", got, authenticated=True,
                                    policy=self.policy_for(ctx))
                check.detail = f"as {acc.name}: " + check.detail
                ctx.check(check)

    @staticmethod
    def _auth(acc: Account) -> dict[str, Any]:
        return {"from_user": acc.username, "auth": (acc.auth_username, acc.password.reveal())}

    def _probe(self, ctx: RunContext, probe: SipProbe, uris: list[tuple[str, str]],
               callers: list[tuple[str, dict[str, Any]]], *, authenticated: bool, t_end: float) -> _Probed:
        """Each caller variant to each format; after a call that took the whole wait, the rest of this
        check's formats are left out (the check has failed already; each would cost the wait again)."""
        got = _Probed()
        waited_out = False
        for fmt, uri in uris:
            for what, kw in callers:
                label = f"{uri.removeprefix('sip:')} ({what})" if len(callers) > 1 else uri.removeprefix("sip:")
                if waited_out:
                    got.skipped.append((label, "an earlier call already took the whole wait: the check has failed"))
                    continue
                if time.monotonic() > min(t_end, ctx.deadline):
                    got.skipped.append((label, f"the step's time bound of {self.max_s:g} s was reached"))
                    continue
                wait = ctx.remaining(self.timeout_s)
                call = place_call(probe, uri, timeout=wait, note=f"toll fraud ({fmt}): {what}", **kw)
                outcome = classify(call, self.policy_for(ctx), authenticated=authenticated, waited_s=wait)
                got.calls.append((fmt, label, call, outcome))
                waited_out = outcome.kind == "not_refused" and call.cancelled
        return got

    def _judge(self, name: CheckName, severity: str, got: _Probed, *, authenticated: bool,
               policy: RefusalPolicy | None = None) -> CheckResult:
        policy = policy or self.policy
        outcomes = [o for _, _, _, o in got.calls]
        verdict = verdict_of(outcomes)
        if got.skipped and verdict == "pass":
            verdict = "error"  # some formats were never probed: no PASS on what was not measured
        threshold = f"refused ({policy.describe(authenticated=authenticated)})"
        lines = [f"{label}: {o.text}" for _, label, _, o in got.calls] + got.skipped_text()
        metrics = {"formats": [{"format": fmt, "call": label, "outcome": o.kind} for fmt, label, _, o in got.calls],
                   "codes": [c.codes for _, _, c, _ in got.calls], "refusals": list(policy.codes),
                   "not_probed": [label for label, _ in got.skipped]}
        detail = "; ".join(lines)
        if verdict == "error":
            return finding_error(name, detail or "no call was placed", severity, got.refs, threshold, **metrics)
        value = "refused" if verdict == "pass" else (
            "routed" if any(o.kind == "routed" for o in outcomes) else "not refused")
        return finding(name, verdict == "pass", value, threshold, severity, detail, got.refs, **metrics)
