"""A scenario the harness could not judge because its own host was starved is run once more.

When every check that did not PASS was turned to ERROR by the health watch (``harness host
overloaded``: the parties' clocks or the lab's processes ran late while it was measured) and nothing
else went wrong, the scenario said nothing about the PBX. The runner then runs it again, up to
``reruns`` times (``harness run --reruns``, default 1), and the last attempt's verdict is the
scenario's. Nothing of the earlier attempt is lost: its directory is renamed ``<dir>.attempt<N>``,
its whole result is written there as ``result.json``, and the scenario's ``attempts`` list in
``results.json`` names it, with the figures that made it unjudgeable. A FAIL blamed on the PBX, a
crashed party, a failed step or an internal error is never run again: those are answers, or faults
of the harness that a second try would hide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.contracts.results import ScenarioResult, write_json_atomic
from harness.contracts.verdict import Verdict

__all__ = ["set_aside", "starved_reasons"]


def starved_reasons(res: ScenarioResult) -> list[str] | None:
    """The health figures that made ``res`` unjudgeable, or None when it is an answer to keep.

    Only an ERROR whose every non-PASS check carries the health watch's "overloaded" verdict, with no
    step stopped by an error, qualifies.
    """
    if res.verdict is not Verdict.ERROR or res.error is not None:
        return None
    bad = [c for c in res.checks if c.verdict is not Verdict.PASS]
    reasons: list[str] = []
    for c in bad:
        health = c.metrics.get("health") if isinstance(c.metrics, dict) else None
        if c.verdict is not Verdict.ERROR or c.blame != "harness" or not isinstance(health, dict) \
                or not health.get("overloaded"):
            return None
        reasons += [str(r) for r in health.get("reasons") or [] if str(r) not in reasons]
    return reasons if bad else None


def set_aside(res: ScenarioResult, out_dir: Path, attempt: int, reasons: list[str]) -> dict[str, Any]:
    """Keep attempt ``attempt`` whole under ``<dir>.attempt<N>``; returns its entry for ``attempts``."""
    old = out_dir / res.out_dir
    new = out_dir / f"{res.out_dir}.attempt{attempt}"
    if old.is_dir() and not new.exists():
        old.rename(new)
        res.out_dir = new.name
    if (out_dir / res.out_dir).is_dir():
        write_json_atomic(out_dir / res.out_dir / "result.json", res.to_dict())
    return {"attempt": attempt, "verdict": res.verdict.value, "started": res.started,
            "duration_s": round(res.duration_s, 3), "out_dir": res.out_dir, "why_run_again": reasons,
            "checks": [c.to_dict() for c in res.checks if c.verdict is not Verdict.PASS]}
