"""What every step that sends raw SIP shares: a probe session bounded in scope and packets, the scenario's
one evidence file, the thresholds and the profile account it probes with.

Every packet the harness sends outside a pjsua2 party goes through :func:`probe_session`
(:class:`harness.probes.ProbeSession`): its destination passes a :class:`~harness.probes.ProbeScope` (the
target, loopback, or a party of the scenario given as ``scope``) and it is paid from the session's
:class:`~harness.probes.PacketBudget`. The raw SIP goes to ``probes-evidence.txt`` in the scenario
directory (passwords and digest responses masked).
"""

from __future__ import annotations

from harness.contracts.target import TRANSPORTS, Account, Target
from harness.contracts.yamlsrc import Fields
from harness.probes import EvidenceLog, ProbeScope, ProbeSession
from harness.scenarios.context import RunContext

__all__ = ["EVIDENCE_FILE", "ProbeStep", "evidence_log", "limit", "pick_account", "probe_session", "transport_param"]

EVIDENCE_FILE = "probes-evidence.txt"


def limit(ctx: RunContext, key: str, param: float | None) -> float:
    """A threshold: the step's parameter, else scenario/profile ``thresholds[key]``, else the default
    (:data:`harness.contracts.thresholds.DEFAULT_THRESHOLDS`)."""
    return float(ctx.threshold(key, param))


def evidence_log(ctx: RunContext) -> EvidenceLog:
    """The scenario's one evidence file, shared by all its probe steps (exchange numbers run on)."""
    log = ctx.extra.get("probe_evidence")
    if not isinstance(log, EvidenceLog):
        log = EvidenceLog(ctx.out_dir / EVIDENCE_FILE,
                          secrets=[a.password.reveal() for a in ctx.target.accounts.values()])
        ctx.extra["probe_evidence"] = log
        ctx.artifacts["evidence:probes"] = EVIDENCE_FILE
    return log


class ProbeStep:
    """A step that sends raw probes: before anything starts, the target must resolve to addresses a
    probe may use, or the run stops with an input error (exit 2)."""

    @staticmethod
    def preflight(target: Target) -> None:
        ProbeScope.for_target(target)


def probe_session(ctx: RunContext, packets: int, timeout_s: float, *, isolated: bool = False,
                  scope: ProbeScope | None = None) -> ProbeSession:
    """A probe session toward the target; refuses (ProbeScopeError) any address but it and loopback.

    ``isolated``: on loopback, probe from an address of the session's own (see ProbeSession). ``scope``:
    another destination than the target (a party of the scenario, see ``steps_rawsip.party_scope``).
    """
    return ProbeSession(ctx.target, evidence_log(ctx), packets=packets, timeout=ctx.remaining(timeout_s),
                        isolated=isolated, scope=scope)


def pick_account(ctx: RunContext, name: str | None) -> Account | None:
    """The named profile account, else ``caller``, else the first one; None when the profile has none."""
    accounts = ctx.target.accounts
    if name is not None:
        return ctx.target.account(name)  # ProfileError names the known accounts
    if "caller" in accounts:
        return accounts["caller"]
    return next(iter(accounts.values()), None)


def transport_param(f: Fields, key: str = "transport") -> str | None:
    value = f.opt(key, str, None)
    if value is not None and value not in TRANSPORTS:
        raise f.fail(key, f"must be one of {', '.join(TRANSPORTS)}, got {value!r}")
    return value
