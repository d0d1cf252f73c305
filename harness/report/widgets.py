"""Page pieces used by several sections: verdict badges, value formatting, the checks table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from harness.report.markup import Markup, el
from harness.report.run_store import as_dict

__all__ = ["badge", "checks_table", "fmt_clock", "fmt_value", "measured", "verdict_class"]


def verdict_class(verdict: Any) -> str:
    return {"PASS": "pass", "FAIL": "fail"}.get(str(verdict), "error")


def badge(verdict: Any, text: str | None = None) -> Markup:
    return el("span", text or str(verdict or "ERROR"), class_=f"badge {verdict_class(verdict)}")


def fmt_value(v: Any, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    text = str(v)
    if isinstance(v, float):
        text = f"{v:.4g}" if abs(v) < 1e5 else f"{v:.0f}"
    return f"{text} {unit}" if unit else text


def measured(c: dict[str, Any]) -> str:
    """``3500 ms (limit <= 2000 ms)``: what was measured against what threshold."""
    unit = str(c.get("unit") or "")
    shown_unit = "" if unit == "SIP" else unit
    value = fmt_value(c.get("value"), shown_unit) if c.get("value") is not None else "not measured"
    thr = c.get("threshold")
    op = str(c.get("op") or "")
    limit = f"{op} {fmt_value(thr, shown_unit if op else '')}".strip() if thr is not None else ""
    return f"{value} (limit {limit})" if limit else value


def fmt_clock(t: Any) -> str:
    if not isinstance(t, int | float) or isinstance(t, bool) or t <= 0:
        return "—"
    return dt.datetime.fromtimestamp(float(t)).strftime("%Y-%m-%d %H:%M")


def checks_table(checks: Sequence[dict[str, Any]], *, severity: bool = False) -> Markup:
    """Checks with value against threshold; failures are highlighted, details kept verbatim (escaped)."""
    if not checks:
        return el("p", "No checks were judged.", class_="muted")
    rows = []
    for c in checks:
        unit = str(c.get("unit") or "")
        shown_unit = "" if unit == "SIP" else unit
        op = str(c.get("op") or "")
        thr = c.get("threshold")
        metrics = as_dict(c.get("metrics"))
        rows.append(el(
            "tr",
            el("td", badge(c.get("verdict"))),
            el("td", str(c.get("name")), class_="mono"),
            el("td", fmt_value(c.get("value"), shown_unit), class_="num"),
            el("td", f"{op} {fmt_value(thr, shown_unit if op else '')}".strip() if thr is not None else "—",
               class_="num"),
            el("td", str(metrics.get("severity") or "")) if severity else None,
            el("td", str(c.get("detail") or ""), class_="detail"),
            class_="row-" + verdict_class(c.get("verdict")),
        ))
    head = ["verdict", "check", "measured", "threshold"] + (["severity"] if severity else []) + ["detail"]
    return el("table", el("thead", el("tr", *(el("th", h) for h in head))), el("tbody", rows), class_="t checks")
