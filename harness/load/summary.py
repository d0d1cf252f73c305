"""From binned recordings to per-step figures and SLA verdicts: what ``load.json`` holds.

Pure: takes the merged :class:`~harness.load.recorder.Recorder` of every process, the wall-clock
time the shape started, the profile and the media samples, and returns plain data. Each stage of
the timeline is a step; a bin of recordings (a tenth of a second) belongs to the step running at its
middle (bins after the end, when the last calls hang up, count in the last step). SLA keys are judged per step
that offered load, with :meth:`harness.contracts.verdict.CheckResult.compare`: a missing measurement (no
call in the step, no media sample) is ERROR, never PASS.
"""

from __future__ import annotations

from typing import Any

from harness.contracts.verdict import CheckResult, worst
from harness.load.histogram import Hist
from harness.load.profile import SLA_KEYS, LoadProfile
from harness.load.recorder import BINS_PER_S, Recorder

__all__ = ["ARRIVALS", "summarize"]

#: request names that stand for one new transaction each (the others are parts of a call)
ARRIVALS = ("call:setup", "OPTIONS", "REGISTER", "CANCEL")
#: counters that mean the generator, not the PBX, fell short: the figures are not trustworthy
GENERATOR_FAULTS = ("skipped_in_flight", "flow_errors")


def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def _step_of(bin_: int, t0: float, starts: list[float], n: int, width: float = 1.0 / BINS_PER_S) -> int:
    mid = bin_ / BINS_PER_S + width / 2.0 - t0
    idx = 0
    for i, s in enumerate(starts):
        if mid >= s:
            idx = i
    return min(idx, n - 1)


def summarize(rec: Recorder, t0_wall: float, profile: LoadProfile, *, media: list[dict[str, Any]] | None = None,
              run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``load.json`` document: per-step figures, totals and SLA checks (as CheckResult dicts)."""
    timeline = profile.timeline
    n = len(timeline.stages)
    hists: list[dict[str, Hist]] = [{} for _ in range(n)]
    total_h: dict[str, Hist] = {}
    fails: list[dict[str, dict[str, int]]] = [{} for _ in range(n)]
    total_f: dict[str, dict[str, int]] = {}
    counters: list[dict[str, int]] = [{} for _ in range(n)]
    gauges: list[dict[str, list[float]]] = [{} for _ in range(n)]
    for (b, name), h in rec.hists.items():
        i = _step_of(b, t0_wall, timeline.starts, n)
        hists[i].setdefault(name, Hist()).merge(h)
        total_h.setdefault(name, Hist()).merge(h)
    for (b, name, code), k in rec.failures.items():
        i = _step_of(b, t0_wall, timeline.starts, n)
        fails[i].setdefault(name, {})[code] = fails[i].get(name, {}).get(code, 0) + k
        total_f.setdefault(name, {})[code] = total_f.get(name, {}).get(code, 0) + k
    for (b, name), k in rec.counters.items():
        i = _step_of(b, t0_wall, timeline.starts, n)
        counters[i][name] = counters[i].get(name, 0) + k
    for (b, name), v in rec.gauges.items():
        if b / BINS_PER_S + 0.5 - t0_wall >= timeline.duration_s:
            continue  # the drain after the end is not part of any step's load
        i = _step_of(b, t0_wall, timeline.starts, n, width=1.0)  # gauges are kept per whole second
        gauges[i].setdefault(name, []).append(v)

    media = media or []
    steps = []
    checks: list[CheckResult] = []
    for i, stage in enumerate(timeline.stages):
        start, end = timeline.window(i)
        step = _step(i, stage.label, start, end, stage.mean, profile.mode, hists[i], fails[i], counters[i],
                     gauges[i], [m for m in media if m.get("step") == i])
        judged = _judge(step, profile) if stage.peak > 0 else []  # a step that offers nothing asks nothing
        step["checks"] = [c.to_dict() for c in judged]
        checks += judged
        steps.append(step)

    totals = _figures(total_h, total_f)
    all_counters: dict[str, int] = {}
    for step_counters in counters:
        for key, count in step_counters.items():
            all_counters[key] = all_counters.get(key, 0) + count
    faults = {k: all_counters.get(k, 0) for k in GENERATOR_FAULTS if all_counters.get(k, 0)}
    if faults:
        checks.append(CheckResult.error(
            "generator", "the load generator fell short of the profile ("
            + ", ".join(f"{k} {v}" for k, v in faults.items()) + "): the figures understate the load"))
    return {
        "profile": profile.public(),
        "mode": profile.mode,
        "started": t0_wall,
        "duration_s": timeline.duration_s,
        "steps": steps,
        "totals": {"requests": totals, "counters": all_counters,
                   "failures_by_code": {name: dict(codes) for name, codes in total_f.items()}},
        "media": media,
        "checks": [c.to_dict() for c in checks],
        "verdict": worst([c.verdict for c in checks]).value,
        "run": run_info or {},
    }


def _figures(hists: dict[str, Hist], fails: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(hists) | set(fails)):
        h = hists.get(name, Hist())
        failed = sum(fails.get(name, {}).values())
        out[name] = {"count": h.count + failed, "ok": h.count, "failed": failed,
                     "p50_ms": _r(h.percentile(50)), "p95_ms": _r(h.percentile(95)),
                     "p99_ms": _r(h.percentile(99)), "mean_ms": _r(h.mean), "max_ms": _r(h.max),
                     "failures_by_code": dict(sorted(fails.get(name, {}).items()))}
    return out


def _step(i: int, label: str, start: float, end: float, target: float, mode: str, hists: dict[str, Hist],
          fails: dict[str, dict[str, int]], counters: dict[str, int], gauges: dict[str, list[float]],
          media: list[dict[str, Any]]) -> dict[str, Any]:
    figures = _figures(hists, fails)
    duration = end - start
    arrivals = sum(figures.get(name, {}).get("count", 0) for name in ARRIVALS)
    ok = sum(f["ok"] for name, f in figures.items() if name != "call:ringing")
    total = sum(f["count"] for name, f in figures.items() if name != "call:ringing")
    up = gauges.get("calls_up", [])
    rate = arrivals / duration if duration > 0 else None
    held = sum(up) / len(up) if up else None
    achieved = rate if mode == "rate" else held
    cpu = gauges.get("cpu_pct", [])
    return {
        "index": i, "label": label, "start_s": round(start, 3), "end_s": round(end, 3),
        "target": round(target, 3), "target_unit": "calls/s" if mode == "rate" else "calls up",
        "achieved": _r(achieved), "rate_achieved_pct": _r(100.0 * achieved / target, 1)
        if achieved is not None and target > 0 else None,
        "attempts_per_s": _r(arrivals / duration if duration > 0 else None),
        "calls_up_max": max(up) if up else None, "calls_up_mean": _r(sum(up) / len(up) if up else None, 1),
        "success_rate_pct": _r(100.0 * ok / total, 3) if total else None,
        "requests": figures, "counters": dict(sorted(counters.items())),
        "generator_cpu_pct": {"max": max(cpu) if cpu else None, "mean": _r(sum(cpu) / len(cpu) if cpu else None, 1)},
        "media": _media_figures(media),
    }


def _media_figures(media: list[dict[str, Any]]) -> dict[str, Any]:
    if not media:
        return {"planned": 0}
    mos, emos, loss = [], [], []
    for m in media:
        for d in (m.get("directions") or {}).values():
            if d.get("mos") is not None:
                mos.append(float(d["mos"]))
            if d.get("emodel_mos") is not None:
                emos.append(float(d["emodel_mos"]))
            if d.get("loss_pct") is not None:
                loss.append(float(d["loss_pct"]))
    return {"planned": len(media), "answered": sum(1 for m in media if m.get("ok")),
            "mos_min": _r(min(mos) if mos else None, 2), "mos_mean": _r(sum(mos) / len(mos) if mos else None, 2),
            "emodel_mos_min": _r(min(emos) if emos else None, 2),
            "loss_max_pct": _r(max(loss) if loss else None, 2),
            "errors": [m["error"] for m in media if m.get("error")]}


def _judge(step: dict[str, Any], profile: LoadProfile) -> list[CheckResult]:
    out = []
    where = f"step {step['index'] + 1} ({step['label']})"
    for key, threshold in profile.sla.items():
        rule = SLA_KEYS[key]
        name = f"{key}@step{step['index'] + 1}"
        detail = where
        if rule.metric == "success":
            value = step["success_rate_pct"]
        elif rule.metric == "rate":
            value = step["rate_achieved_pct"]
            detail = f"{where}: {step['achieved']} of {step['target']} {step['target_unit']}"
        elif rule.metric in ("mos", "loss"):
            media = step["media"]
            if not media.get("planned"):
                continue  # no media call fits this step (shorter than talk_s): nothing was asked
            value = media.get("mos_min") if rule.metric == "mos" else media.get("loss_max_pct")
            if value is None:
                detail = f"{where}: no media call was measured ({'; '.join(media.get('errors') or []) or 'no data'})"
        else:
            fig = step["requests"].get(rule.metric, {})
            value = fig.get(f"{rule.stat}_ms")
            if value is None:
                detail = f"{where}: no successful {rule.metric} in this step"
            else:
                detail = f"{where}: {fig.get('ok')} samples"
        out.append(CheckResult.compare(name, value, rule.op, threshold, rule.unit, detail=detail))
    return out
