"""Small inline SVG charts drawn here (no chart library, nothing loaded from the network).

Every label goes through :func:`harness.report.markup.el`, so run names and scenario names are
escaped like the rest of the page. Missing values (None) leave a gap in a line, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.markup import Markup, el

__all__ = ["Series", "bar_chart", "line_chart", "stacked_bars"]

GREEN, AMBER, RED, GREY, BLUE = "#1a7f37", "#bf8700", "#cf222e", "#8c959f", "#0969da"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str = BLUE
    dashed: bool = False


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"


def _label_slots(n: int, most: int = 8) -> list[int]:
    """Which of ``n`` x positions get a label: evenly spaced, always the last, never two crowded together."""
    every = max(1, math.ceil(n / most))
    slots = [i for i in range(0, n, every)]
    if n and slots[-1] != n - 1:
        if n - 1 - slots[-1] < every and len(slots) > 1:
            slots.pop()
        slots.append(n - 1)
    return slots


def _frame(width: int, height: int, title: str, parts: list[Markup], desc: str) -> Markup:
    svg = el("svg", el("title", title), *parts, xmlns="http://www.w3.org/2000/svg", width=width, height=height,
             viewBox=f"0 0 {width} {height}", class_="chart", role="img", aria_label=desc or title)
    return el("figure", el("figcaption", title), svg, class_="chartfig")


def line_chart(series: Sequence[Series], x_labels: Sequence[str], *, title: str, unit: str = "",
               y_min: float | None = None, y_max: float | None = None, threshold: float | None = None,
               threshold_label: str = "threshold", width: int = 380, height: int = 170,
               x_title: str = "") -> Markup:
    """A line per series over ``x_labels``; ``threshold`` as a dashed red line; the last point stressed."""
    ml, mr, mt, mb = 40, 10, 10, 34 if x_title else 24
    pw, ph = width - ml - mr, height - mt - mb
    vals = [v for s in series for v in s.values if v is not None]
    if not vals:
        return el("p", f"{title}: no measurements yet.", class_="muted")
    # a limit far above every value would flatten the data into the floor: name it instead of drawing it
    off_chart = threshold is not None and y_max is None and threshold > 3 * max(vals) > 0
    if threshold is not None and not off_chart:
        vals.append(threshold)
    lo = min(vals) if y_min is None else y_min
    hi = max(vals) if y_max is None else y_max
    if y_min is None:
        lo = 0.0 if lo >= 0 and hi > 0 and lo < hi * 0.5 else lo - (hi - lo) * 0.15
    if y_max is None:
        hi = _nice_max(hi) if lo == 0 else hi + (hi - lo) * 0.15
    if hi <= lo:
        hi = lo + 1.0
    n = max(len(x_labels), 1)

    def px(i: int) -> float:
        return ml + (pw * (i + 0.5) / n)

    def py(v: float) -> float:
        return mt + ph - (v - lo) / (hi - lo) * ph

    parts: list[Markup] = []
    for k in range(5):
        tick = lo + (hi - lo) * k / 4
        parts.append(el("line", x1=ml, y1=f"{py(tick):.1f}", x2=width - mr, y2=f"{py(tick):.1f}", class_="grid"))
        parts.append(el("text", _fmt(tick), x=ml - 4, y=f"{py(tick) + 3:.1f}", class_="ax", text_anchor="end"))
    for i in _label_slots(n):
        parts.append(el("text", x_labels[i], x=f"{px(i):.1f}", y=height - mb + 13, class_="ax", text_anchor="middle"))
    if x_title:
        parts.append(el("text", x_title, x=ml + pw / 2, y=height - 3, class_="ax", text_anchor="middle"))
    if off_chart:
        parts.append(el("text", el("title", f"{threshold_label}: {threshold:g} {unit}, far above every value"),
                        f"limit {threshold:g} {unit} ↑", x=width - mr - 4, y=mt + 10, class_="ax",
                        text_anchor="end"))
    elif threshold is not None:
        y = py(threshold)
        parts.append(el("line", el("title", f"{threshold_label}: {threshold:g} {unit}"), x1=ml, y1=f"{y:.1f}",
                        x2=width - mr, y2=f"{y:.1f}", class_="thr"))
    for s in series:
        run: list[str] = []
        segs: list[list[str]] = []
        for i, v in enumerate(s.values):
            if v is None:
                if run:
                    segs.append(run)
                run = []
                continue
            run.append(f"{px(i):.1f},{py(v):.1f}")
        if run:
            segs.append(run)
        for seg in segs:
            parts.append(el("polyline", points=" ".join(seg), fill="none", stroke=s.colour, stroke_width=2,
                            stroke_dasharray="4 3" if s.dashed else None))
        for i, v in enumerate(s.values):
            if v is None:
                continue
            last = i == len(s.values) - 1
            parts.append(el("circle", el("title", f"{x_labels[i] if i < len(x_labels) else i}: {s.name} {v:g} {unit}"),
                            cx=f"{px(i):.1f}", cy=f"{py(v):.1f}", r=4.5 if last else 2.5, fill=s.colour,
                            stroke="#fff" if last else None))
    legend_x = ml + 4
    for s in series:
        parts.append(el("text", "— " + s.name, x=legend_x, y=mt + 10, fill=s.colour, class_="leg"))
        legend_x += 10 + 7 * (len(s.name) + 2)
    return _frame(width, height, title, parts, f"{title} over the last {n} runs")


def bar_chart(values: Sequence[float | None], x_labels: Sequence[str], *, title: str, y_max: float = 100.0,
              unit: str = "%", colours: Sequence[str] | None = None, width: int = 380, height: int = 170) -> Markup:
    """Vertical bars (e.g. pass rate per run); None is drawn as a grey 'no data' stub."""
    ml, mr, mt, mb = 40, 10, 10, 24
    pw, ph = width - ml - mr, height - mt - mb
    n = max(len(values), 1)
    bw = pw / n
    parts: list[Markup] = []
    for k in range(5):
        y = mt + ph - ph * k / 4
        parts.append(el("line", x1=ml, y1=f"{y:.1f}", x2=width - mr, y2=f"{y:.1f}", class_="grid"))
        parts.append(el("text", _fmt(y_max * k / 4), x=ml - 4, y=f"{y + 3:.1f}", class_="ax", text_anchor="end"))
    slots = set(_label_slots(n))
    for i, v in enumerate(values):
        x = ml + i * bw + bw * 0.15
        lab = x_labels[i] if i < len(x_labels) else str(i)
        if v is None:
            parts.append(el("rect", el("title", f"{lab}: no data"), x=f"{x:.1f}", y=mt + ph - 3,
                            width=f"{bw * 0.7:.1f}", height=3, fill=GREY))
        else:
            h = max(3.0, ph * min(v, y_max) / y_max)  # a zero still shows, in its colour
            fill = colours[i] if colours else BLUE
            parts.append(el("rect", el("title", f"{lab}: {v:.0f}{unit}"), x=f"{x:.1f}", y=f"{mt + ph - h:.1f}",
                            width=f"{bw * 0.7:.1f}", height=f"{h:.1f}", fill=fill,
                            class_="last" if i == len(values) - 1 and h > 6 else None))
        if i in slots:
            parts.append(el("text", lab, x=f"{x + bw * 0.35:.1f}", y=height - 8, class_="ax", text_anchor="middle"))
    return _frame(width, height, title, parts, title)


def stacked_bars(rows: Sequence[tuple[str, dict[str, int]]], colours: dict[str, str], *, title: str,
                 width: int = 380, bar_h: int = 20) -> Markup:
    """Horizontal stacked bars: one row per label (e.g. age bucket), segments per key (e.g. state)."""
    ml, mr, mt = 84, 30, 22
    total_max = max([sum(d.values()) for _, d in rows] + [1])
    height = mt + len(rows) * (bar_h + 6) + 6
    pw = width - ml - mr
    parts: list[Markup] = []
    lx = ml
    for key, colour in colours.items():
        parts.append(el("rect", x=lx, y=4, width=10, height=10, fill=colour))
        parts.append(el("text", key, x=lx + 13, y=13, class_="ax"))
        lx += 20 + 7 * len(key)
    for r, (label, counts) in enumerate(rows):
        y = mt + r * (bar_h + 6)
        parts.append(el("text", label, x=ml - 6, y=y + bar_h / 2 + 4, class_="ax", text_anchor="end"))
        x = float(ml)
        for key, colour in colours.items():
            c = counts.get(key, 0)
            if not c:
                continue
            w = pw * c / total_max
            parts.append(el("rect", el("title", f"{label}: {c} {key}"), x=f"{x:.1f}", y=y, width=f"{w:.1f}",
                            height=bar_h, fill=colour))
            if w > 14:
                parts.append(el("text", str(c), x=f"{x + w / 2:.1f}", y=y + bar_h / 2 + 4, class_="barl",
                                text_anchor="middle"))
            x += w
        total = sum(counts.values())
        parts.append(el("text", str(total), x=f"{x + 4:.1f}", y=y + bar_h / 2 + 4, class_="ax"))
    return _frame(width, height, title, parts, title)
