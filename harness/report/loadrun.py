"""A load run (``load.json`` written by ``harness load``): percentiles per step against the rate achieved,
failures by SIP code, MOS under load, and the SLA verdicts.

Keys read (all optional; anything else is ignored)::

    run_id, started, finished, profile, verdict
    sla | checks            [CheckResult dict, ...]          run-level SLA verdicts
    steps: [
      {name,
       rate_target, rate_achieved            calls/s (also accepted: target_cps, achieved_cps)
       calls, concurrent                      ints
       setup_ms: {p50, p95, p99}             ms (also accepted: p50_ms, p95_ms, p99_ms on the step)
       failures: {"<SIP code or reason>": count}   (also accepted: failures_by_code)
       mos: float | {"mean": float, "min": float}   MOS of the calls sampled under load
       sla | checks: [CheckResult dict, ...]}      per-step SLA verdicts
    ]
"""

from __future__ import annotations

from typing import Any

from harness.report.charts import AMBER, BLUE, RED, Series, line_chart
from harness.report.markup import Markup, el, join
from harness.report.run_store import as_dict
from harness.report.widgets import checks_table

__all__ = ["load_checks", "load_section", "step_view"]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def step_view(step: dict[str, Any]) -> dict[str, Any]:
    """One step in the canonical shape, tolerant of the accepted alternative keys."""
    setup = as_dict(step.get("setup_ms"))
    pct = {p: _num(setup.get(p, step.get(f"{p}_ms"))) for p in ("p50", "p95", "p99")}
    failures = step.get("failures", step.get("failures_by_code"))
    mos = step.get("mos", step.get("mos_under_load"))
    mos_mean = _num(mos.get("mean")) if isinstance(mos, dict) else _num(mos)
    mos_min = _num(mos.get("min")) if isinstance(mos, dict) else None
    checks = step.get("sla", step.get("checks"))
    return {"name": str(step.get("name") or "step"),
            "rate_target": _num(step.get("rate_target", step.get("target_cps"))),
            "rate_achieved": _num(step.get("rate_achieved", step.get("achieved_cps"))),
            "calls": step.get("calls"), "concurrent": step.get("concurrent"), **pct,
            "failures": {str(k): int(v) for k, v in failures.items() if isinstance(v, int | float)}
            if isinstance(failures, dict) else {},
            "mos": mos_mean, "mos_min": mos_min,
            "checks": [c for c in checks if isinstance(c, dict) and "name" in c] if isinstance(checks, list) else []}


def load_checks(load: dict[str, Any]) -> list[dict[str, Any]]:
    """Every SLA verdict of the run: run-level first, then each step's (named ``step:check``)."""
    top = load.get("sla", load.get("checks"))
    out = [c for c in top if isinstance(c, dict) and "name" in c] if isinstance(top, list) else []
    for s in load.get("steps") or []:
        if isinstance(s, dict):
            v = step_view(s)
            out += [{**c, "name": f"{v['name']}:{c['name']}"} for c in v["checks"]]
    return out


def _f(v: float | None, fmt: str = ".0f") -> str:
    return "—" if v is None else f"{v:{fmt}}"


def load_section(load: dict[str, Any]) -> Markup:
    steps = [step_view(s) for s in load.get("steps") or [] if isinstance(s, dict)]
    checks = load_checks(load)
    parts: list[Markup | None] = [el("h3", "SLA verdicts"), checks_table(checks)]
    if steps:
        labels = [f"{_f(s['rate_achieved'], '.0f')}/s" for s in steps]
        parts.append(el("div", line_chart(
            [Series("p50", [s["p50"] for s in steps], BLUE), Series("p95", [s["p95"] for s in steps], AMBER),
             Series("p99", [s["p99"] for s in steps], RED, dashed=True)],
            labels, title="Setup time percentiles per step (ms) against the rate achieved", unit="ms",
            width=560, height=200, x_title="calls/s achieved (one point per step)"),
            line_chart([Series("mean MOS", [s["mos"] for s in steps], BLUE),
                        Series("worst MOS", [s["mos_min"] for s in steps], RED, dashed=True)],
                       labels, title="MOS under load", y_min=1.0, y_max=5.0, width=560, height=200,
                       x_title="calls/s achieved (sampled calls per step)"),
            class_="charts"))
        codes = sorted({k for s in steps for k in s["failures"]})
        head = ["step", "target /s", "achieved /s", "calls", "p50 ms", "p95 ms", "p99 ms", "MOS"] + \
            [f"fail {c}" for c in codes]
        rows = []
        for s in steps:
            short = s["rate_target"] is not None and s["rate_achieved"] is not None and \
                s["rate_achieved"] < 0.95 * s["rate_target"]
            rows.append(el("tr", el("td", s["name"]), el("td", _f(s["rate_target"], ".1f"), class_="num"),
                           el("td", _f(s["rate_achieved"], ".1f"), class_="num" + (" warn" if short else "")),
                           el("td", str(s["calls"] if s["calls"] is not None else "—"), class_="num"),
                           el("td", _f(s["p50"], ".1f"), class_="num"), el("td", _f(s["p95"], ".1f"), class_="num"),
                           el("td", _f(s["p99"], ".1f"), class_="num"), el("td", _f(s["mos"], ".2f"), class_="num"),
                           *(el("td", str(s["failures"].get(c, 0)), class_="num" + (" bad" if s["failures"].get(c)
                                                                                     else "")) for c in codes)))
        parts.append(el("h3", "Steps"))
        parts.append(el("table", el("thead", el("tr", *(el("th", h) for h in head))), el("tbody", rows),
                        class_="t"))
    else:
        parts.append(el("p", "load.json has no steps.", class_="muted"))
    return join(parts)
