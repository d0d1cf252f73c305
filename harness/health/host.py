"""The harness host's pressure, sampled while a run goes on: CPU, memory and I/O stalls, and CPU steal.

Linux's pressure stall information (``/proc/pressure/*``, PSI) counts the microseconds in which some
(or all) runnable tasks waited for a CPU, for memory (reclaim, swap-in, thrashing) or for I/O. On a
virtual machine, ``/proc/stat``'s steal column counts the time the hypervisor gave the CPU to others.
Both are cumulative counters, so the share of any window is the difference of two samples::

    mon = HostMonitor()
    mon.start()
    ...
    print(mon.over(t0, t1))      # {'cpu_some_pct': 3.1, 'memory_full_pct': 0.0, ..., 'worst_1s': {...}}
    mon.stop()

A sampler thread reads the counters every 100 ms (about 30 µs a sample) and keeps an hour of them.
Where the files do not exist (an old kernel, PSI disabled, not Linux) the figures are ``None``:
not measured, never zero.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from harness.health.sampler import Sampler

__all__ = ["HOST_SERIES", "HostMonitor", "read_counters"]

PSI_DIR = Path("/proc/pressure")
PROC_STAT = Path("/proc/stat")
SAMPLE_S = 0.1
KEEP = 36_000
#: the series a window reports, each a share of wall time in per cent
HOST_SERIES = ("cpu_some_pct", "memory_some_pct", "memory_full_pct", "io_full_pct", "steal_pct")
_PSI = (("cpu", "some"), ("memory", "some"), ("memory", "full"), ("io", "full"))


def _psi_total(text: str, kind: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(kind + " "):
            for part in line.split():
                if part.startswith("total="):
                    return float(part[6:])
    return None


def read_counters(psi_dir: Path = PSI_DIR, proc_stat: Path = PROC_STAT) -> dict[str, float | None]:
    """Cumulative counters now: PSI totals in µs, CPU steal and total time in µs (from jiffies)."""
    out: dict[str, float | None] = {}
    for res, kind in _PSI:
        try:
            out[f"{res}_{kind}"] = _psi_total((psi_dir / res).read_text(), kind)
        except OSError:
            out[f"{res}_{kind}"] = None
    try:
        lines = proc_stat.read_text().splitlines()
        ticks = [float(v) for v in lines[0].split()[1:]]
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        ncpu = max(1, sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit()))
        # steal is the 8th column; the cpu line sums all CPUs, so divide by their number for a wall share
        out["steal"] = ticks[7] * 1e6 / hz / ncpu if len(ticks) > 7 else None
    except (OSError, ValueError, IndexError):
        out["steal"] = None
    return out


class HostMonitor(Sampler):
    """Samples :func:`read_counters` in a daemon thread; :meth:`over` gives a window's shares."""

    thread_name = "host-monitor"

    def __init__(self, sample_s: float = SAMPLE_S, reader: Any = read_counters):
        super().__init__(sample_s)
        self.reader = reader
        self.samples: deque[tuple[float, dict[str, float | None]]] = deque(maxlen=KEEP)

    def sample(self) -> None:
        counters = self.reader()
        with self._lock:
            self.samples.append((time.monotonic(), counters))

    def over(self, t0: float, t1: float) -> dict[str, Any]:
        """Shares of ``[t0, t1]`` (monotonic seconds) in per cent, and the worst 1 s inside it."""
        with self._lock:
            rows = [(t, c) for t, c in self.samples if t0 - self.sample_s <= t <= t1 + self.sample_s]
        return shares(rows)


def _share(a: dict[str, float | None], b: dict[str, float | None], key: str, dt: float) -> float | None:
    va, vb = a.get(key), b.get(key)
    if va is None or vb is None or dt <= 0:
        return None
    return round(min(100.0, max(0.0, (vb - va) / (dt * 1e6) * 100.0)), 2)


_KEYS = dict(zip(HOST_SERIES, ("cpu_some", "memory_some", "memory_full", "io_full", "steal"), strict=True))


def shares(rows: list[tuple[float, dict[str, float | None]]]) -> dict[str, Any]:
    """Window shares from timed counter samples; ``None`` for a series that was not measured."""
    out: dict[str, Any] = {name: None for name in HOST_SERIES}
    out["worst_1s"] = {name: None for name in HOST_SERIES}
    if len(rows) < 2:
        out["measured"] = False
        return out
    out["measured"] = True
    (ta, a), (tb, b) = rows[0], rows[-1]
    for name, key in _KEYS.items():
        out[name] = _share(a, b, key, tb - ta)
    # the worst second: a short stall diluted in a long window still shows here
    j = 0
    for i in range(len(rows)):
        while j < len(rows) and rows[j][0] - rows[i][0] < 1.0:
            j += 1
        if j >= len(rows):
            break
        for name, key in _KEYS.items():
            v = _share(rows[i][1], rows[j][1], key, rows[j][0] - rows[i][0])
            if v is not None and (out["worst_1s"][name] is None or v > out["worst_1s"][name]):
                out["worst_1s"][name] = v
    return out
