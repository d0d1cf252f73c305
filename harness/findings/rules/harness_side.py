"""Rules for failures of the harness itself: asked before every other rule, for every kind of check.

A check the runner blamed on the harness (``blame: harness``) says nothing about the PBX: its host was
overloaded while the check was measured (the figures come from the parties' own clocks and the host's
pressure, see harness.health), a party process crashed, the lab did not start, or the harness hit a bug.
"""

from __future__ import annotations

from harness.findings.evidence import Clues
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry


@rule("harness_overloaded", kinds=("*",), order=0)
def harness_overloaded(c: Clues) -> Diagnosis | None:
    health = (c.check.get("metrics") or {}).get("health") or {}
    if c.check.get("blame") != "harness" or not health.get("overloaded"):
        return None
    reasons = [str(r) for r in health.get("reasons") or []]
    shared = bool((c.scenario.get("health") or {}).get("shared_host"))
    when = "while this check was measured"
    if health.get("before_s"):
        when = (f"in the {health['before_s']} s before this check's window (the calls' jitter buffers were still "
                "shedding the delay the stall added)")
    cause = f"harness host overloaded {when}: " + "; ".join(reasons)
    if shared:
        cause += " (the lab PBX shares this host, so its media relay was starved too)"
    return found(cause,
                 "Nothing is known about the PBX from this check. Re-run on a quieter host (no other jobs, enough "
                 "memory; give the harness real-time scheduling: run it as root or grant CAP_SYS_NICE), or raise "
                 "the health limits only if this host is known to be slow: thresholds.health in the profile.",
                 *reasons, f"measured over {health.get('window_s')} s", confidence="likely")


@rule("harness_failed", kinds=("*",), order=1)
def harness_failed(c: Clues) -> Diagnosis | None:
    if c.check.get("blame") != "harness":
        return None
    detail = str(c.check.get("detail") or "") or str(c.error.get("message") or "")
    kind = str(c.error.get("kind") or "")
    if kind == "internal":
        fix = "a bug in the harness: report it with the traceback file kept in the scenario's evidence"
    elif "crash" in detail or "killed" in detail or "exited" in detail:
        fix = ("a party process died: its last log lines are in the evidence; re-run, and report it if it happens "
               "again (a pjsua2 assertion is a harness bug)")
    else:
        fix = "the harness could not do its job here: read its message and the lab's logs, fix the harness side, re-run"
    return found(f"the harness failed, not the PBX: {detail}", fix, confidence="likely")
