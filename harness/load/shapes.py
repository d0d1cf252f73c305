"""Load shapes as data: ramps, steps and spikes flattened into a timeline of linear stages.

A profile's ``shape`` is a list of entries; each expands into one or more :class:`Stage` (a straight
line from ``start`` to ``end`` over ``duration_s``). The value is calls per second in ``rate`` mode
(open loop) or calls up at once in ``concurrent`` mode. Every stage is one "step" of the summary::

    tl = Timeline(ramp(0, 20, 10) + steps([20, 40], 5) + spike(20, 80, 9, spike_s=3))
    tl.value_at(12.0)   # -> 20.0
    tl.index_at(12.0)   # -> 1
    tl.duration_s       # -> 29.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Stage", "Timeline", "hold", "ramp", "spike", "steps", "users_for"]


@dataclass(frozen=True)
class Stage:
    """``start`` -> ``end`` linearly over ``duration_s``; ``label`` names it in the summary."""

    label: str
    duration_s: float
    start: float
    end: float

    @property
    def mean(self) -> float:
        return (self.start + self.end) / 2.0

    @property
    def peak(self) -> float:
        return max(self.start, self.end)

    def value_at(self, t: float) -> float:
        if self.duration_s <= 0:
            return self.end
        f = min(1.0, max(0.0, t / self.duration_s))
        return self.start + (self.end - self.start) * f


def _num(v: float) -> str:
    return f"{v:g}"


def ramp(start: float, end: float, duration_s: float) -> list[Stage]:
    return [Stage(f"ramp {_num(start)}->{_num(end)}", duration_s, start, end)]


def hold(value: float, duration_s: float) -> list[Stage]:
    return [Stage(f"hold {_num(value)}", duration_s, value, value)]


def steps(levels: list[float], duration_s: float) -> list[Stage]:
    """One flat stage per level, each ``duration_s`` long."""
    return [Stage(f"step {_num(v)}", duration_s, v, v) for v in levels]


def spike(base: float, peak: float, duration_s: float, *, spike_s: float, at_s: float | None = None) -> list[Stage]:
    """``base``, then ``peak`` for ``spike_s`` starting at ``at_s`` (default: centred), then ``base`` again."""
    at = (duration_s - spike_s) / 2.0 if at_s is None else at_s
    out = []
    if at > 0:
        out.append(Stage(f"spike base {_num(base)}", at, base, base))
    out.append(Stage(f"spike peak {_num(peak)}", spike_s, peak, peak))
    rest = duration_s - at - spike_s
    if rest > 0:
        out.append(Stage(f"spike base {_num(base)}", rest, base, base))
    return out


class Timeline:
    """Stages end to end; time ``t`` is seconds since the load started."""

    def __init__(self, stages: list[Stage]):
        if not stages:
            raise ValueError("a timeline needs at least one stage")
        self.stages = list(stages)
        self.starts: list[float] = []
        acc = 0.0
        for s in self.stages:
            self.starts.append(acc)
            acc += s.duration_s
        self.duration_s = acc

    @property
    def peak(self) -> float:
        return max(s.peak for s in self.stages)

    def index_at(self, t: float) -> int | None:
        """The stage running at ``t``; None before 0 and at or after the end."""
        if t < 0 or t >= self.duration_s:
            return None
        for i in range(len(self.stages) - 1, -1, -1):
            if t >= self.starts[i]:
                return i
        return None

    def value_at(self, t: float) -> float | None:
        i = self.index_at(t)
        if i is None:
            return None
        return self.stages[i].value_at(t - self.starts[i])

    def window(self, index: int) -> tuple[float, float]:
        """``[start, end)`` of stage ``index`` in seconds since the load started."""
        return self.starts[index], self.starts[index] + self.stages[index].duration_s


def users_for(value: float, per_user: float) -> int:
    """Locust users that produce ``value``: each user carries ``per_user`` calls/s (or calls)."""
    if value <= 0:
        return 0
    return max(1, math.floor(value / per_user + 0.5))
