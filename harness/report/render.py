"""Render a run directory into ``report.html`` (and ``report.json``), from stored files only::

    report = render_report(Path("reports/run-20240101-020000"), last=14)
    path = write_report(Path("reports/run-20240101-020000"))      # -> .../report.html (+ report.json)

``last`` is how many earlier runs (sibling directories of the run) feed the trends and the
"since the previous run" comparison.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness.report.digest import Digest, digest, report_json
from harness.report.findings import findings_section
from harness.report.front import front_page
from harness.report.loadrun import load_section
from harness.report.markup import Markup, el, join
from harness.report.page import document
from harness.report.run_store import RunData, history, load_run
from harness.report.scenario import EmbedBudget, scenario_section
from harness.report.widgets import fmt_clock, verdict_class

__all__ = ["DEFAULT_HISTORY", "Report", "render_report", "write_report"]

DEFAULT_HISTORY = 14
REPORT_HTML, REPORT_JSON = "report.html", "report.json"

#: Rendered scenario sections (and the bytes of audio they embedded) by (out_dir, started, verdict,
#: anchor): a live sink re-renders the page after every scenario and need not redraw the finished ones.
FragmentCache = MutableMapping[tuple[str, Any, Any, str], tuple[Markup, int]]


@dataclass
class Report:
    run: RunData
    digest: Digest
    html: str
    data: dict[str, Any]


def _hero(d: Digest) -> Markup:
    res = d.run.results or {}
    target = (res.get("target") or {}).get("name") or ""
    counts = res.get("counts") or {}
    word = {"PASS": "PASSED", "FAIL": "FAILED"}.get(d.verdict, "ERROR")
    facts = [f"run {d.run.run_id}", f"target {target}" if target else None,
             f"started {fmt_clock(d.run.started)}",
             (f"{counts.get('PASS', 0)} passed · {counts.get('FAIL', 0)} failed · {counts.get('ERROR', 0)} errors"
              if counts else None)]
    unfinished = None
    if d.run.results is not None and res.get("finished") is None:
        # the runner rewrites results.json after every scenario and sets "finished" at the very end
        unfinished = el("span", "not finished: the run is still going, or it stopped before its end",
                        class_="badge error")
    return el("div", el("span", word, class_=f"big {verdict_class(d.verdict)}"),
              el("h1", "Test report"), el("span", " · ".join(f for f in facts if f), class_="muted"), unfinished,
              class_="hero")


def _scenarios(run: RunData, report_dir: Path, anchor_of: dict[str, str], cache: FragmentCache | None) -> Markup:
    target = (run.results or {}).get("target") or {}
    addr = f"{target.get('host')}:{target.get('port')}" if target.get("host") and target.get("port") else ""
    parts = []
    budget = EmbedBudget()
    for i, sc in enumerate(run.scenarios):
        anchor = f"sc-{i + 1}"
        key = (str(sc.get("out_dir")), sc.get("started"), sc.get("verdict"), anchor)
        if cache is not None and key in cache:
            frag, used = cache[key]
            budget.left -= used
        else:
            left = budget.left
            frag = scenario_section(sc, run.dir, anchor, report_dir, addr, budget)
            used = left - budget.left
            if cache is not None:
                cache[key] = (frag, used)
        parts.append(frag)
    return join(parts)


def render_report(run_dir: Path, *, last: int = DEFAULT_HISTORY, out: Path | None = None,
                  cache: FragmentCache | None = None) -> Report:
    """Render the report of ``run_dir``; ``out`` is where it will be written (for relative links)."""
    run = load_run(run_dir)
    d = digest(run, history(run, last))
    report_dir = (out or run_dir / REPORT_HTML).parent
    anchor_of: dict[str, str] = {}
    for i, sc in enumerate(run.scenarios):
        anchor_of.setdefault(str(sc.get("name")), f"sc-{i + 1}")
    nav = [("Summary", "summary")]
    body: list[Markup | None] = [_hero(d)]
    if run.problems:
        body.append(el("div", el("b", "Some stored data could not be used: "),
                       el("ul", [el("li", p) for p in run.problems]), class_="problems"))
    body.append(front_page(d, anchor_of))
    if run.load is not None:
        nav.append(("Load", "load"))
        body.append(el("section", el("h2", "Load: ", str(run.load.get("profile") or run.run_id)),
                       load_section(run.load), id="load"))
    nav.append(("Findings", "findings"))
    body.append(el("section", el("h2", "Findings"), findings_section(run.findings, d.now, anchor_of, run.retests),
                   id="findings"))
    if run.scenarios:
        nav.append(("Scenarios", "scenarios"))
        body.append(el("div", _scenarios(run, report_dir, anchor_of, cache), id="scenarios"))
    footer = (f"Generated by harness {harness.__version__} on {time.strftime('%Y-%m-%d %H:%M')} from the stored "
              f"results of {run.dir.name}. This file is self-contained: it opens offline and loads nothing.")
    html = document(f"harness · {run.run_id} · {d.verdict}", nav, join(body), footer)
    return Report(run=run, digest=d, html=str(html), data=report_json(d))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(run_dir: Path, *, out: Path | None = None, last: int = DEFAULT_HISTORY,
                 cache: FragmentCache | None = None) -> Path:
    """Write ``report.html`` (default: in the run directory) and ``report.json`` beside it; returns the HTML path."""
    out = out or run_dir / REPORT_HTML
    rep = render_report(run_dir, last=last, out=out, cache=cache)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, rep.html)
    _write_atomic(out.with_suffix(".json"), json.dumps(rep.data, indent=2, default=str))
    return out
