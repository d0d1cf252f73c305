"""Figures per run over recent runs, and the answer to "is quality trending down?".

One :class:`RunPoint` per run, computed from its stored ``results.json``: pass rate, MOS (mean and
worst direction) and call setup time (median and worst call). :func:`quality_trend` compares the
latest run against the runs before it with fixed, documented rules, so that the front page's answer
can be explained in one sentence:

* a **step**: the latest value is worse than the median of up to 7 previous runs by more than the
  metric's margin (MOS 0.2; setup time 50 % and 50 ms; pass rate 10 points);
* a **drift**: over the last up to 8 runs (at least 4), the least-squares line falls (or, for setup
  time, rises) by more than the same margin from first to last run.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from harness.report.run_store import RunData

__all__ = ["RunPoint", "TrendSignal", "quality_trend", "run_point"]

BASELINE_RUNS = 7
DRIFT_RUNS = 8
MOS_MARGIN = 0.2
SETUP_RATIO, SETUP_MARGIN_MS = 1.5, 50.0
PASS_MARGIN = 0.10


@dataclass(frozen=True)
class RunPoint:
    run_id: str
    dir_name: str
    started: float
    verdict: str
    scenarios: int
    passed: int
    pass_rate: float | None  #: share of scenarios that passed, 0..1; None without scenarios
    checks: int
    checks_passed: int
    mos_mean: float | None
    mos_min: float | None
    setup_median_ms: float | None
    setup_max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and v == v else None


def mos_values(sc: dict[str, Any]) -> list[float]:
    out = []
    for a in (sc.get("audio") or {}).values():
        m = _num(a.get("mos")) if isinstance(a, dict) else None
        if m is not None:
            out.append(m)
    return out


def setup_values(sc: dict[str, Any]) -> list[float]:
    calls = ((sc.get("sip") or {}).get("calls") or {}).values()
    return [v for v in (_num(c.get("setup_ms")) for c in calls if isinstance(c, dict)) if v is not None]


def run_point(run: RunData) -> RunPoint:
    scs = run.scenarios
    checks = [c for sc in scs for c in sc.get("checks", [])]
    mos = [m for sc in scs for m in mos_values(sc)]
    setup = [s for sc in scs for s in setup_values(sc)]
    passed = sum(1 for sc in scs if sc.get("verdict") == "PASS")
    return RunPoint(
        run_id=run.run_id, dir_name=run.dir.name, started=run.started,
        verdict=str((run.results or {}).get("verdict") or "ERROR"), scenarios=len(scs), passed=passed,
        pass_rate=passed / len(scs) if scs else None, checks=len(checks),
        checks_passed=sum(1 for c in checks if c.get("verdict") == "PASS"),
        mos_mean=round(statistics.fmean(mos), 3) if mos else None, mos_min=min(mos) if mos else None,
        setup_median_ms=round(statistics.median(setup), 2) if setup else None,
        setup_max_ms=max(setup) if setup else None)


@dataclass(frozen=True)
class TrendSignal:
    """One metric's trend: ``state`` is ``worse``, ``better``, ``stable`` or ``unknown`` (too few runs)."""

    metric: str
    state: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _slope(values: list[float]) -> float:
    n = len(values)
    xm, ym = (n - 1) / 2.0, statistics.fmean(values)
    den = sum((i - xm) ** 2 for i in range(n))
    return sum((i - xm) * (v - ym) for i, v in enumerate(values)) / den if den else 0.0


def _signal(metric: str, label: str, series: list[float | None], higher_is_better: bool,
            worse_by: Any, fmt: str, unit: str = "") -> TrendSignal:
    values = [v for v in series if v is not None]
    latest = series[-1] if series else None
    if latest is None or len(values) < 2:
        return TrendSignal(metric, "unknown", f"{label}: not enough runs with a measurement to tell")
    base = statistics.median(values[:-1][-BASELINE_RUNS:])
    now, usual = f"{latest:{fmt}}{unit}", f"{base:{fmt}}{unit}"
    if worse_by(base, latest):
        verb = "fell" if higher_is_better else "rose"
        return TrendSignal(metric, "worse", f"{label} {verb} to {now} from a usual {usual}")
    window = values[-DRIFT_RUNS:]
    if len(window) >= 4:
        first = statistics.fmean(window) - _slope(window) * (len(window) - 1) / 2.0
        last = first + _slope(window) * (len(window) - 1)
        if worse_by(first, last):
            return TrendSignal(metric, "worse", f"{label} is drifting {'down' if higher_is_better else 'up'}: "
                               f"{first:{fmt}}{unit} → {last:{fmt}}{unit} over the last {len(window)} runs")
    if worse_by(latest, base):  # the mirror image: clearly better than usual
        return TrendSignal(metric, "better", f"{label} improved to {now} from a usual {usual}")
    return TrendSignal(metric, "stable", f"{label} is steady at {now} (usual {usual})")


def quality_trend(points: list[RunPoint]) -> list[TrendSignal]:
    """Signals for pass rate, MOS and setup time; the latest run is ``points[-1]``."""
    pass_pct = [None if p.pass_rate is None else p.pass_rate * 100.0 for p in points]
    return [
        _signal("pass_rate", "Pass rate", pass_pct, True,
                lambda base, v: v < base - PASS_MARGIN * 100.0, ".0f", " %"),
        _signal("mos", "Mean MOS", [p.mos_mean for p in points], True,
                lambda base, v: v < base - MOS_MARGIN, ".2f"),
        _signal("setup", "Median setup time", [p.setup_median_ms for p in points], False,
                lambda base, v: v > base * SETUP_RATIO and v > base + SETUP_MARGIN_MS, ".0f", " ms"),
    ]
