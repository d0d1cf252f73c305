"""Response-time histograms fine enough for loopback (microseconds) and mergeable across workers.

Locust rounds response times to whole milliseconds below 100 ms, which hides everything a loopback
PBX does (setup in 0.3-2 ms). :class:`Hist` keeps three significant digits of microseconds instead
(error <= 1%), as a plain dict so that workers can ship it to the master in their reports::

    h = Hist(); h.add(0.412); h.add(1.87)
    h.percentile(50)   # -> 0.412 (ms)
    h.merge(Hist.from_wire(other.to_wire()))
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Hist", "bucket_us"]


def bucket_us(ms: float) -> int:
    """The bucket of a duration: microseconds rounded down to three significant digits."""
    us = int(ms * 1000.0)
    if us < 1000:
        return max(us, 0)
    if us < 10_000:
        return us // 10 * 10
    if us < 100_000:
        return us // 100 * 100
    scale = 10 ** (len(str(us)) - 3)
    return us // scale * scale


class Hist:
    __slots__ = ("buckets", "count", "total_ms")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.total_ms = 0.0

    def add(self, ms: float) -> None:
        b = bucket_us(ms)
        self.buckets[b] = self.buckets.get(b, 0) + 1
        self.count += 1
        self.total_ms += ms

    def merge(self, other: Hist) -> None:
        for b, n in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + n
        self.count += other.count
        self.total_ms += other.total_ms

    def percentile(self, p: float) -> float | None:
        """The smallest recorded value (bucket, in ms) with at least ``p`` % of samples at or below it."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return b / 1000.0
        return max(self.buckets) / 1000.0

    @property
    def mean(self) -> float | None:
        return self.total_ms / self.count if self.count else None

    @property
    def max(self) -> float | None:
        return max(self.buckets) / 1000.0 if self.buckets else None

    def to_wire(self) -> dict[str, Any]:
        return {"b": {str(k): v for k, v in self.buckets.items()}, "n": self.count, "t": self.total_ms}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Hist:
        h = cls()
        h.buckets = {int(k): int(v) for k, v in data.get("b", {}).items()}
        h.count = int(data.get("n", sum(h.buckets.values())))
        h.total_ms = float(data.get("t", 0.0))
        return h
