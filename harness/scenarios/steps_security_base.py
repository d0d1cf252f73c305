"""What every security step shares: the shape of a security check and the small helpers around probes.

A security check is named ``security:<area>:<what>`` (:func:`security_check`) and carries ``metrics["severity"]``,
``metrics["category"] = "security"`` and ``metrics["evidence"]`` (the numbered exchanges in
``probes-evidence.txt``). The steps themselves live in ``steps_security*.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.target import Account
from harness.contracts.verdict import CheckResult, Verdict
from harness.probes import ProbeConnectError, ProbeSession, SipProbe
from harness.scenarios.context import RunContext
from harness.scenarios.steps_probe import EVIDENCE_FILE, pick_account

__all__ = ["DEFAULT_EXTERNAL", "GUEST_DOMAIN", "SEVERITIES", "callee_uri", "finding", "finding_error",
           "judged", "need_account", "open_probe", "security_check", "wrong_password"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
#: +44 1632 960xxx is reserved by Ofcom for drama: it reaches no one if a PBX does let the call out
DEFAULT_EXTERNAL = "00441632960123"
GUEST_DOMAIN = "guest.invalid"  # RFC 2606: never resolves


def security_check(area: str, what: str = "") -> CheckName:
    """The name of a security check: ``security:<area>`` or ``security:<area>:<what>``."""
    return CheckName("security", subject=area, metric=what)


def _security_metrics(severity: str, refs: Iterable[int], **metrics: Any) -> dict[str, Any]:
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    return {"category": "security", "severity": severity,
            "evidence": {"file": EVIDENCE_FILE, "exchanges": list(refs)}, **metrics}


def finding(name: CheckName, ok: bool, value: Any, threshold: Any, severity: str, detail: str = "",
            refs: Iterable[int] = (), **metrics: Any) -> CheckResult:
    """A security check: PASS or FAIL, with what is at stake and where its evidence is."""
    return CheckResult.of(name, Verdict.PASS if ok else Verdict.FAIL, value, threshold, "", "==", detail,
                          _security_metrics(severity, refs, **metrics))


def finding_error(name: CheckName, detail: str, severity: str, refs: Iterable[int] = (), threshold: Any = None,
                  **metrics: Any) -> CheckResult:
    """Nothing could be judged (no answer at all, no callee): ERROR, never a PASS."""
    c = CheckResult.error(name, detail, threshold)
    c.metrics = _security_metrics(severity, refs, **metrics)
    return c


def judged(name: CheckName, verdict: Verdict, value: Any, threshold: Any, severity: str, detail: str,
           refs: Iterable[int] = (), **metrics: Any) -> CheckResult:
    """A security check whose verdict was decided elsewhere (PASS, FAIL or ERROR)."""
    if verdict is Verdict.ERROR:
        return finding_error(name, detail, severity, refs, threshold, **metrics)
    return finding(name, verdict is Verdict.PASS, value, threshold, severity, detail, refs, **metrics)


def wrong_password() -> str:
    return "harness-wrong-" + secrets.token_hex(4)


def callee_uri(ctx: RunContext, to: str | None, avoid: Account | None) -> str:
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


def need_account(ctx: RunContext, name: str | None, check: CheckName, severity: str) -> Account | None:
    acc = pick_account(ctx, name)
    if acc is None:
        ctx.check(finding_error(check, "the target profile has no account to probe with", severity))
    return acc


def open_probe(ctx: RunContext, ps: ProbeSession, check: CheckName, severity: str, **kw: Any) -> SipProbe | None:
    try:
        return ps.probe(**kw)
    except ProbeConnectError as exc:
        ctx.check(finding_error(check, f"cannot reach the PBX: {exc}", severity))
        return None
