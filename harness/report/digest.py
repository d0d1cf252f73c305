"""The front page's answers as data: shared by the HTML front page and ``report.json``.

Did the run pass, what broke since the previous run, what is still open, is quality trending down,
plus the series behind the trend charts and the slowest and worst calls. ``report.json`` is
:func:`report_json` of a :class:`Digest` (schema ``harness-report/1``); other tools read it instead
of scraping the HTML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harness.contracts.verdict import Verdict, worst
from harness.report.changes import AudioRow, CallRow, Changes, changes, slowest_calls, worst_audio
from harness.report.findings import AGE_BUCKETS, age_days, by_age_and_state, open_findings, state_of
from harness.report.loadrun import load_checks
from harness.report.run_store import RunData
from harness.report.trends import RunPoint, TrendSignal, quality_trend, run_point

__all__ = ["SCHEMA", "Digest", "digest", "report_json"]

SCHEMA = "harness-report/1"


@dataclass
class Digest:
    run: RunData
    history: list[RunData]  #: earlier runs, oldest first (not including ``run``)
    verdict: str
    points: list[RunPoint]  #: history + this run
    changes: Changes
    trend: list[TrendSignal]
    slowest: list[CallRow]
    worst: list[AudioRow]
    open: list[dict[str, Any]]  #: open findings, oldest first
    load_checks: list[dict[str, Any]]
    now: float  #: the run's start: ages are counted up to it

    @property
    def trending_down(self) -> bool:
        return any(s.state == "worse" for s in self.trend)

    def thresholds(self, suffix: str) -> float | None:
        """The threshold of this run's checks whose name ends with ``suffix`` (e.g. ``:mos``)."""
        for sc in self.run.scenarios:
            for c in sc.get("checks", []):
                name = str(c.get("name"))
                if (name.endswith(suffix) or name.startswith(suffix)) and isinstance(c.get("threshold"), int | float):
                    return float(c["threshold"])
        return None


def _verdict(run: RunData, checks: list[dict[str, Any]]) -> str:
    verdicts: list[Verdict] = []
    if run.results is not None:
        verdicts.append(Verdict(str(run.results.get("verdict") or "ERROR")) if str(
            run.results.get("verdict")) in Verdict.__members__ else Verdict.ERROR)
    if run.load is not None:
        lv = str(run.load.get("verdict") or "")
        if lv in Verdict.__members__:
            verdicts.append(Verdict(lv))
        verdicts += [Verdict(str(c["verdict"])) if str(c.get("verdict")) in Verdict.__members__ else Verdict.ERROR
                     for c in checks]
    return worst(verdicts).value


def digest(run: RunData, history: list[RunData]) -> Digest:
    lchecks = load_checks(run.load) if run.load is not None else []
    points = [run_point(r) for r in history] + ([run_point(run)] if run.results is not None else [])
    now = run.started or time.time()
    return Digest(run=run, history=history, verdict=_verdict(run, lchecks), points=points,
                  changes=changes(run, history[-1] if history else None), trend=quality_trend(points),
                  slowest=slowest_calls(run), worst=worst_audio(run),
                  open=open_findings(run.findings or [], now), load_checks=lchecks, now=now)


def report_json(d: Digest) -> dict[str, Any]:
    run = d.run
    res = run.results or {}
    counts = res.get("counts") or {}
    by_state: dict[str, int] = {}
    for f in d.open:
        by_state[state_of(f)] = by_state.get(state_of(f), 0) + 1
    return {
        "schema": SCHEMA,
        "run_id": run.run_id,
        "run_dir": run.dir.name,
        "started": run.started,
        "finished": res.get("finished") or (run.load or {}).get("finished"),
        "target": (res.get("target") or {}).get("name"),
        "verdict": d.verdict,
        "counts": counts,
        "answers": {
            "passed": d.verdict == "PASS",
            "broke_since_previous": len(d.changes.broke),
            "new_failures": len(d.changes.new),
            "fixed_since_previous": len(d.changes.fixed),
            "still_open_findings": len(d.open) if run.findings is not None else None,
            "quality_trending_down": d.trending_down,
        },
        "changes": d.changes.to_dict(),
        "trend": [s.to_dict() for s in d.trend],
        "history": [p.to_dict() for p in d.points],
        "slowest_calls": [r.to_dict() for r in d.slowest],
        "worst_audio": [r.to_dict() for r in d.worst],
        "findings": None if run.findings is None else {
            "open": len(d.open), "by_state": by_state,
            "by_age": {label: sum(c.values()) for label, c in by_age_and_state(d.open, d.now)},
            "open_ids": [f.get("id") for f in d.open],
            "oldest_open_days": round(age_days(d.open[0], d.now) or 0.0, 2) if d.open else None,
            "age_buckets": [label for _, label in AGE_BUCKETS],
        },
        "load": None if run.load is None else {"verdict": run.load.get("verdict"), "checks": d.load_checks},
        "scenarios": [{"name": sc.get("name"), "verdict": sc.get("verdict"), "duration_s": sc.get("duration_s"),
                       "checks": [{k: c.get(k) for k in ("name", "verdict", "value", "op", "threshold", "unit",
                                                          "detail")} for c in sc.get("checks", [])]}
                      for sc in run.scenarios],
        "problems": list(run.problems),
    }
