"""The front page: four answers at a glance, then the trends, open findings and the worst calls.

1. Did tonight pass?  2. What broke since the previous run?  3. What is still open?
4. Is quality trending down?  Each answer is one sentence with the evidence a click away.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from harness.report.changes import CheckChange
from harness.report.charts import AMBER, BLUE, GREEN, RED, Series, bar_chart, line_chart
from harness.report.digest import Digest
from harness.report.findings import age_days, age_text, findings_chart, state_badge, state_of
from harness.report.markup import Markup, el, join
from harness.report.trends import RunPoint
from harness.report.widgets import badge, fmt_clock, fmt_value, measured, verdict_class

__all__ = ["front_page", "x_labels"]


def x_labels(points: list[RunPoint]) -> list[str]:
    days = [dt.datetime.fromtimestamp(p.started) if p.started > 0 else None for p in points]
    labels = [d.strftime("%d %b") if d else p.run_id[-6:] for d, p in zip(days, points, strict=True)]
    if len(set(labels)) < len(labels):  # several runs a day: the time tells them apart
        labels = [d.strftime("%d %H:%M") if d else lab for d, lab in zip(days, labels, strict=True)]
    return labels


def _card(question: str, verdict: str, answer: Markup | str, *body: Markup | None) -> Markup:
    return el("div", el("div", question, class_="q"), el("div", answer, class_="a"), *body,
              class_=f"card {verdict}")


def _change_list(items: list[CheckChange], anchor_of: dict[str, str], limit: int = 6) -> Markup | None:
    if not items:
        return None
    lis = [el("li", el("a", c.scenario, href="#" + anchor_of[c.scenario]) if c.scenario in anchor_of else c.scenario,
              ": ", el("span", c.check, class_="mono"), " ", badge(c.after),
              el("div", measured(c.to_dict()), class_="small muted", title=c.detail or None))
           for c in items[:limit]]
    more = el("li", f"… and {len(items) - limit} more", class_="muted") if len(items) > limit else None
    return el("ul", lis, more, class_="changes")


def _did_it_pass(d: Digest) -> Markup:
    res = d.run.results or {}
    scs = d.run.scenarios
    passed = sum(1 for s in scs if s.get("verdict") == "PASS")
    checks = [c for s in scs for c in s.get("checks", [])]
    ok = sum(1 for c in checks if c.get("verdict") == "PASS")
    word = {"PASS": "Yes — everything passed", "FAIL": "No — checks failed",
            "ERROR": "No — the run hit errors"}.get(d.verdict, d.verdict)
    lines: list[Markup | None] = []
    if scs:
        lines.append(el("p", f"{passed} of {len(scs)} scenarios passed; {ok} of {len(checks)} checks."))
    if d.load_checks:
        lp = sum(1 for c in d.load_checks if c.get("verdict") == "PASS")
        lines.append(el("p", f"Load SLA: {lp} of {len(d.load_checks)} verdicts passed."))
    if res.get("interrupted"):
        lines.append(el("p", "The run was interrupted: results are partial.", class_="warn"))
    errors = [s for s in scs if s.get("verdict") == "ERROR"]
    if errors:
        lines.append(el("p", "Errors (could not be judged): ",
                        join([el("span", str(s.get("name")), class_="mono") for s in errors[:4]], ", "),
                        class_="small"))
    return _card("Did tonight pass?", verdict_class(d.verdict), word, *lines)


def _what_broke(d: Digest, anchor_of: dict[str, str]) -> Markup:
    ch = d.changes
    if ch.previous_run is None:
        return _card("What broke since the previous run?", "muted", "No previous run to compare with",
                     _change_list(ch.new, anchor_of))
    n = len(ch.broke) + len(ch.new)
    answer = "Nothing broke" if n == 0 else f"{len(ch.broke)} check(s) broke" + (
        f", {len(ch.new)} new failure(s)" if ch.new else "")
    extra = el("p", f"Fixed since then: {len(ch.fixed)}. Still failing: {len(ch.still_failing)}.", class_="small")
    return _card("What broke since the previous run?", "pass" if n == 0 else "fail", answer,
                 el("p", f"Compared with {ch.previous_run}.", class_="small muted"),
                 _change_list(ch.broke + ch.new, anchor_of), extra)


def _still_open(d: Digest, anchor_of: dict[str, str]) -> Markup:
    if d.run.findings is None:
        still = d.changes.still_failing
        return _card("What is still open?", "muted" if not still else "fail",
                     "No findings store data for this run" if not still else
                     f"{len(still)} check(s) still failing from the previous run",
                     _change_list(still, anchor_of))
    if not d.open:
        return _card("What is still open?", "pass", "No open findings")
    oldest = age_days(d.open[0], d.now)
    items = [el("li", el("a", str(f.get("id")), href=f"#finding-{f.get('id')}"), " ", state_badge(state_of(f)), " ",
                str(f.get("scenario") or ""), " ", el("span", str(f.get("check") or ""), class_="mono small"),
                el("span", f" · {age_text(age_days(f, d.now))} old", class_="muted small"))
             for f in d.open[:5]]
    return _card("What is still open?", "fail", f"{len(d.open)} open finding(s), oldest {age_text(oldest)}",
                 el("ul", items, class_="changes"))


def _trending(d: Digest) -> Markup:
    worse = [s for s in d.trend if s.state == "worse"]
    known = [s for s in d.trend if s.state != "unknown"]
    if not known:
        answer, cls = "Not enough history yet", "muted"
    elif worse:
        answer, cls = "Yes — " + "; ".join(s.text for s in worse), "fail"
    else:
        answer, cls = "No — quality is steady", "pass"
    return _card("Is quality trending down?", cls, answer,
                 el("ul", [el("li", el("span", s.state, class_=f"trend {s.state}"), " ", s.text) for s in d.trend],
                    class_="small"))


def _trend_charts(d: Digest) -> Markup:
    pts = d.points
    if not pts:
        return el("p", "No runs with results to chart.", class_="muted")
    labels = x_labels(pts)
    rates = [None if p.pass_rate is None else p.pass_rate * 100.0 for p in pts]
    colours = [GREEN if r is not None and r >= 99.99 else AMBER if r is not None and r >= 80 else RED for r in rates]
    mos_thr, setup_thr = d.thresholds(":mos"), d.thresholds("setup_time:")
    return el("div",
              bar_chart(rates, labels, title=f"Pass rate per run (last {len(pts)} runs)", colours=colours),
              line_chart([Series("mean", [p.mos_mean for p in pts], BLUE),
                          Series("worst direction", [p.mos_min for p in pts], RED, dashed=True)], labels,
                         title="MOS per run", y_min=1.0, y_max=5.0, threshold=mos_thr, threshold_label="min MOS"),
              line_chart([Series("median", [p.setup_median_ms for p in pts], BLUE),
                          Series("slowest call", [p.setup_max_ms for p in pts], AMBER, dashed=True)], labels,
                         title="Call setup time per run (ms)", unit="ms", y_min=0.0, threshold=setup_thr,
                         threshold_label="max setup time"),
              class_="charts")


def _seconds(v: Any) -> str:
    return f"{v:.1f} s" if isinstance(v, int | float) else "—"


def _mos(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _worst_tables(d: Digest, anchor_of: dict[str, str]) -> Markup:
    def link(sc: str) -> Markup | str:
        return el("a", sc, href="#" + anchor_of[sc]) if sc in anchor_of else sc

    calls = el("table", el("thead", el("tr", el("th", "scenario"), el("th", "call"), el("th", "setup (ms)"),
                                       el("th", "final"))),
               el("tbody", [el("tr", el("td", link(r.scenario)), el("td", r.call),
                               el("td", fmt_value(r.setup_ms) if r.answered or r.setup_ms else "not answered",
                                  class_="num"), el("td", str(r.final_code or "—"), class_="num"))
                            for r in d.slowest]), class_="t compact")
    audio = el("table", el("thead", el("tr", el("th", "scenario"), el("th", "direction"), el("th", "MOS"),
                                       el("th", "E-model"), el("th", "dropouts"), el("th", "verdict"))),
               el("tbody", [el("tr", el("td", link(r.scenario)), el("td", r.direction),
                               el("td", _mos(r.mos), class_="num"), el("td", _mos(r.emodel_mos), class_="num"),
                               el("td", str(r.dropouts), class_="num"), el("td", badge(r.verdict)))
                            for r in d.worst]), class_="t compact")
    return el("div",
              el("div", el("h3", "Slowest calls"), calls if d.slowest else el("p", "No calls.", class_="muted")),
              el("div", el("h3", "Worst audio"), audio if d.worst else el("p", "No audio judged.", class_="muted")),
              class_="cols")


def _scenario_table(d: Digest, anchor_of: dict[str, str]) -> Markup:
    rows = []
    for sc in d.run.scenarios:
        bad = [c for c in sc.get("checks", []) if c.get("verdict") != "PASS"]
        note: Any = "; ".join(f"{c.get('name')}: {measured(c)}" for c in bad[:2]) + (
            f" (+{len(bad) - 2} more)" if len(bad) > 2 else "")
        if not bad and isinstance(sc.get("error"), dict):
            note = str(sc["error"].get("message") or "")
        name = str(sc.get("name"))
        rows.append(el("tr", el("td", badge(sc.get("verdict"))),
                       el("td", el("a", name, href="#" + anchor_of[name]) if name in anchor_of else name),
                       el("td", _seconds(sc.get("duration_s")), class_="num"),
                       el("td", note, class_="detail"), class_="row-" + verdict_class(sc.get("verdict"))))
    return el("table", el("thead", el("tr", el("th", "verdict"), el("th", "scenario"), el("th", "time"),
                                      el("th", "what did not pass"))), el("tbody", rows), class_="t")


def _history_table(d: Digest) -> Markup | None:
    if len(d.points) < 2:
        return None
    rows = []
    for p in reversed(d.points):
        this = p.run_id == d.run.run_id
        name: Markup | str = p.run_id if this else el("a", p.run_id, href=f"../{p.dir_name}/report.html")
        rows.append(el("tr", el("td", name), el("td", fmt_clock(p.started)), el("td", badge(p.verdict)),
                       el("td", "—" if p.pass_rate is None else f"{p.pass_rate * 100:.0f} %", class_="num"),
                       el("td", fmt_value(p.mos_mean), class_="num"),
                       el("td", fmt_value(p.setup_median_ms), class_="num")))
    return el("details", el("summary", f"Recent runs ({len(d.points)})"),
              el("table", el("thead", el("tr", *(el("th", h) for h in ("run", "started", "verdict", "pass rate",
                                                                       "mean MOS", "median setup (ms)")))),
                 el("tbody", rows), class_="t compact"))


def front_page(d: Digest, anchor_of: dict[str, str]) -> Markup:
    parts: list[Markup | None] = [
        el("div", _did_it_pass(d), _what_broke(d, anchor_of), _still_open(d, anchor_of), _trending(d),
           class_="cards"),
        el("h2", "Trends"), _trend_charts(d), _history_table(d),
    ]
    if d.run.findings is not None:
        parts += [el("h2", "Open findings"),
                  el("div", findings_chart(d.run.findings, d.now),
                     el("p", el("a", "All findings with their history ↓", href="#findings")), class_="cols")]
    if d.run.scenarios:
        parts += [el("h2", "Calls"), _worst_tables(d, anchor_of), el("h2", "Scenarios"), _scenario_table(d, anchor_of)]
    return el("section", join(parts), id="summary")
