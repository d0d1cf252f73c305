"""Findings (from the findings store's ``findings.json`` in the run directory): open ones by age and
state, and each finding's history (found, analysed, fixed, retested) with before/after metrics.

The file is the findings store's snapshot (format ``harness-findings/1``, see
:mod:`harness.findings.snapshot`): ``{"findings": [...], "retests": [...]}``; a bare list of findings
is read too. Keys read from each finding (all optional except ``id``; anything else is ignored)::

    id                      str | int
    state                   open | analysed | fixed | verified (others are shown as given)
    scenario, check, target, title   str
    this_run                what this run did to it: found | seen | reopened | passed | verified | retested | open
    first_seen, last_seen   epoch seconds or ISO 8601 text
    occurrences             int
    diagnosis               {"cause": str, "fix": str}
    history                 [{"at": time, "action": str, "from": str, "to": str, "note": str}, ...]
                            (``from_state``/``to_state`` are read as well)
    metrics                 {"before": {name: value}, "after": {name: value}}
    evidence.key_message    str (the SIP message that tells the story, credentials masked by the store)

and from each retest: ``finding`` (the id), ``passed``, ``rows: [{"name", "before": check | null,
"after": check | null}]`` (checks in the ``results.json`` shape) for the before/after comparison.

A finding is *open* unless its state is ``verified`` or ``closed``. Ages are counted up to the run's
own start, so a report rendered again later says the same thing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from harness.report.charts import stacked_bars
from harness.report.markup import Markup, el, join
from harness.report.run_store import as_dict
from harness.report.widgets import badge, measured

__all__ = ["AGE_BUCKETS", "STATE_COLOURS", "age_days", "age_text", "by_age_and_state", "findings_section", "is_open",
           "open_findings", "parse_time"]

CLOSED = {"verified", "closed"}
STATE_COLOURS = {"open": "#cf222e", "reopened": "#82071e", "analysed": "#bf8700", "fixed": "#0969da",
                 "verified": "#1a7f37"}
THIS_RUN = {"found": "found in this run", "seen": "seen again", "reopened": "reopened by this run",
            "passed": "passed in this run", "verified": "verified by this retest", "retested": "retested",
            "open": "not run tonight, still open"}
AGE_BUCKETS = ((1.0, "< 1 day"), (7.0, "1–7 days"), (30.0, "7–30 days"), (float("inf"), "> 30 days"))


def parse_time(v: Any) -> float | None:
    """Epoch seconds from a number or ISO 8601 text (naive text is taken as UTC); None if unreadable."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and v:
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return t.timestamp()
    return None


def fmt_time(v: Any) -> str:
    t = parse_time(v)
    return "—" if t is None else dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def state_of(f: dict[str, Any]) -> str:
    return str(f.get("state") or "open").lower()


def is_open(f: dict[str, Any]) -> bool:
    return state_of(f) not in CLOSED


def age_days(f: dict[str, Any], now: float) -> float | None:
    t = parse_time(f.get("first_seen"))
    return None if t is None else max(0.0, (now - t) / 86400.0)


def open_findings(findings: Sequence[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Open findings, oldest first."""
    return sorted((f for f in findings if is_open(f)), key=lambda f: -(age_days(f, now) or 0.0))


def by_age_and_state(findings: Sequence[dict[str, Any]], now: float) -> list[tuple[str, dict[str, int]]]:
    rows: list[tuple[str, dict[str, int]]] = [(label, {}) for _, label in AGE_BUCKETS]
    for f in findings:
        if not is_open(f):
            continue
        age = age_days(f, now) or 0.0
        idx = next(i for i, (limit, _) in enumerate(AGE_BUCKETS) if age < limit)
        counts = rows[idx][1]
        counts[state_of(f)] = counts.get(state_of(f), 0) + 1
    return rows


def state_badge(state: str) -> Markup:
    return el("span", state, class_="state", style=f"background:{STATE_COLOURS.get(state, '#57606a')}")


def findings_chart(findings: Sequence[dict[str, Any]], now: float) -> Markup:
    states = {s: c for s, c in STATE_COLOURS.items() if s not in CLOSED}
    for f in findings:
        if is_open(f) and state_of(f) not in states:
            states[state_of(f)] = "#57606a"
    return stacked_bars(by_age_and_state(findings, now), states, title="Open findings by age and state")


def age_text(days: float | None) -> str:
    if days is None:
        return "—"
    if days < 1:
        return f"{days * 24:.0f} h"
    return f"{days:.0f} day" if round(days) == 1 else f"{days:.0f} days"


def _retest_table(retest: dict[str, Any]) -> Markup | None:
    rows = []
    for r in retest.get("rows") or []:
        if not isinstance(r, dict):
            continue
        before, after = as_dict(r.get("before")), as_dict(r.get("after"))
        rows.append(el("tr", el("td", str(r.get("name") or ""), class_="mono"),
                       el("td", badge(before.get("verdict")) if before else "—", " ",
                          measured(before) if before else ""),
                       el("td", badge(after.get("verdict")) if after else "—", " ", measured(after) if after else "")))
    if not rows:
        return None
    outcome = "passed" if retest.get("passed") else "failed"
    return el("div", el("p", el("b", f"Retest {outcome}"),
                        f" ({retest.get('action')})" if retest.get("action") else "", class_="small"),
              el("table", el("thead", el("tr", el("th", "check"), el("th", "before"), el("th", "after (retest)"))),
                 el("tbody", rows), class_="t compact"))


def _metrics_table(metrics: Any) -> Markup | None:
    if not isinstance(metrics, dict):
        return None
    before, after = metrics.get("before"), metrics.get("after")
    if not isinstance(before, dict) and not isinstance(after, dict):
        return None
    before, after = before if isinstance(before, dict) else {}, after if isinstance(after, dict) else {}
    rows = []
    for k in list(before) + [k for k in after if k not in before]:
        b, a = before.get(k), after.get(k)
        delta = ""
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            delta = f"{a - b:+.3g}"
        rows.append(el("tr", el("td", k), el("td", _show(b), class_="num"), el("td", _show(a), class_="num"),
                       el("td", delta, class_="num")))
    return el("table", el("thead", el("tr", el("th", "metric"), el("th", "before"), el("th", "after (retest)"),
                                      el("th", "change"))), el("tbody", rows), class_="t compact")


def _show(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _history(hist: Any) -> Markup | None:
    if not isinstance(hist, list) or not hist:
        return None
    items = []
    for h in hist:
        if not isinstance(h, dict):
            continue
        frm, to = h.get("from_state", h.get("from")), h.get("to_state", h.get("to"))
        step = f"{frm} → {to}" if frm else f"{to or '?'}"
        action = str(h.get("action") or "")
        items.append(el("li", el("span", fmt_time(h.get("at")), class_="muted"), " ",
                        state_badge(str(to or "?").lower()), " ", el("b", action) if action else None,
                        f" ({step})" if action else step,
                        el("div", str(h["note"]), class_="note") if h.get("note") else None))
    return el("ol", items, class_="timeline")


def _finding_row(f: dict[str, Any], now: float, anchor_of: dict[str, str],
                 retests: dict[str, dict[str, Any]]) -> Markup:
    diag = as_dict(f.get("diagnosis"))
    sc = str(f.get("scenario") or "")
    where = el("a", sc, href="#" + anchor_of[sc]) if sc in anchor_of else sc
    key_msg = as_dict(f.get("evidence")).get("key_message")
    retest = retests.get(str(f.get("id")))
    details = [x for x in (_history(f.get("history")), _metrics_table(f.get("metrics")),
                           _retest_table(retest) if retest else None,
                           el("pre", str(key_msg)) if key_msg else None) if x is not None]
    this_run = str(f.get("this_run") or "")
    cause = el("div", el("b", "Cause: "), str(diag.get("cause"))) if diag.get("cause") else None
    fix = el("div", el("b", "Fix: "), str(diag.get("fix"))) if diag.get("fix") else None
    return el("tr",
              el("td", str(f.get("id")), class_="mono"),
              el("td", state_badge(state_of(f)),
                 el("div", THIS_RUN.get(this_run, this_run), class_="small muted") if this_run else None),
              el("td", where, el("div", str(f.get("check") or ""), class_="mono small"),
                 el("div", str(f.get("title")), class_="small") if f.get("title") else None),
              el("td", str(f.get("target") or "")),
              el("td", fmt_time(f.get("first_seen"))), el("td", age_text(age_days(f, now)), class_="num"),
              el("td", str(f.get("occurrences") or 1), class_="num"),
              el("td", cause, fix,
                 el("details", el("summary", "history and metrics"), *details) if details else None),
              id=f"finding-{f.get('id')}")


def findings_table(findings: Sequence[dict[str, Any]], now: float, anchor_of: dict[str, str],
                   retests: dict[str, dict[str, Any]] | None = None) -> Markup:
    head = el("tr", *(el("th", h) for h in ("id", "state", "scenario / check", "target", "first seen", "age",
                                             "seen", "diagnosis")))
    rows = [_finding_row(f, now, anchor_of, retests or {}) for f in findings]
    return el("table", el("thead", head), el("tbody", rows), class_="t findings")


def findings_section(findings: list[dict[str, Any]] | None, now: float, anchor_of: dict[str, str],
                     retests: list[dict[str, Any]] | None = None) -> Markup:
    """All findings of the snapshot: open ones first (oldest first), verified ones folded away."""
    by_id = {str(r.get("finding")): r for r in retests or [] if isinstance(r, dict)}
    if findings is None:
        return el("p", "No findings.json in this run directory: the findings store did not report for this run.",
                  class_="muted")
    if not findings:
        return el("p", "The findings store has no findings for this target.", class_="muted")
    opened = open_findings(findings, now)
    closed = [f for f in findings if not is_open(f)]
    parts: list[Markup | None] = [
        el("p", f"{len(opened)} open, {len(closed)} verified or closed."),
        findings_table(opened, now, anchor_of, by_id) if opened else el("p", "Nothing open.", class_="ok"),
    ]
    if closed:
        parts.append(el("details", el("summary", f"Verified and closed findings ({len(closed)})"),
                        findings_table(closed, now, anchor_of, by_id)))
    return join(parts)
