"""Percentiles of probe round trips (linear interpolation between closest ranks, as numpy's default).

::

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    >>> percentile([], 95) is None
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "summarize"]


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) of ``values``; None when there are none."""
    if not values:
        return None
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is out of range 0-100")
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 3)


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, min, p50, p95, max of a list of milliseconds (for a check's metrics)."""
    return {"n": len(values), "min_ms": round(min(values), 3) if values else None,
            "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
            "max_ms": round(max(values), 3) if values else None}
