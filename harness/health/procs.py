"""How long the lab's own processes waited for a CPU: the lab PBX shares the harness's host.

A party measures its own clocks (:mod:`harness.sip.health`); the lab's kamailio, rtpengine and IVR/queue
services are programs the harness starts but does not write. Linux counts, per thread, the nanoseconds it
spent runnable but waiting on a run queue (``/proc/PID/task/TID/schedstat``, second field). Sampled every
100 ms, the largest increase of any thread of a component is how long that component was kept from
running in that interval: rtpengine that waited 80 ms forwarded a burst of RTP after an 80 ms gap, and
the far end's jitter buffer saw jitter that no PBX under test caused.

    watch = ProcessWatch(lambda: {"rtpengine": [1234], "kamailio": [1240, 1241]})
    watch.start()
    ...
    watch.over(t0, t1)    # {"rtpengine": 3.1, "kamailio": 0.4}: worst wait in ms per 100 ms, or None
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from harness.health.sampler import Sampler

__all__ = ["ProcessWatch", "descendants", "run_delay_ns"]

SAMPLE_S = 0.1
REFRESH_S = 2.0  #: how often the threads (and kamailio's forked children) are looked up again
KEEP = 36_000

Pids = Callable[[], dict[str, list[int]]]


def run_delay_ns(pid: int, proc: Path = Path("/proc")) -> dict[int, int]:
    """Each thread of ``pid``: nanoseconds spent waiting on a run queue so far (missing: not there)."""
    out: dict[int, int] = {}
    try:
        tids = [int(t.name) for t in (proc / str(pid) / "task").iterdir()]
    except (OSError, ValueError):
        return out
    for tid in tids:
        try:
            fields = (proc / str(pid) / "task" / str(tid) / "schedstat").read_text().split()
            out[tid] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    return out


def descendants(pids: list[int], proc: Path = Path("/proc")) -> list[int]:
    """``pids`` and every process below them (kamailio forks its workers; services start parties)."""
    parent: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    out, todo = list(dict.fromkeys(p for p in pids if p in parent)), list(pids)
    while todo:
        p = todo.pop()
        for child, ppid in parent.items():
            if ppid == p and child not in out:
                out.append(child)
                todo.append(child)
    return out


class ProcessWatch(Sampler):
    """Samples the run-queue wait of named groups of processes in a daemon thread."""

    thread_name = "lab-watch"

    def __init__(self, pids: Pids, sample_s: float = SAMPLE_S, proc: Path = Path("/proc")):
        super().__init__(sample_s)
        self.pids_of, self.proc = pids, proc
        self.samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=KEEP)
        self._last: dict[tuple[int, int], int] = {}
        self._groups: dict[str, list[int]] = {}
        self._refreshed = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_S:
            try:
                self._groups = {name: descendants(pids, self.proc) for name, pids in self.pids_of().items()}
            except OSError:
                self._groups = {}
            self._refreshed = now
        worst: dict[str, float] = {}
        seen: dict[tuple[int, int], int] = {}
        for name, pids in self._groups.items():
            wait = 0.0
            for pid in pids:
                for tid, ns in run_delay_ns(pid, self.proc).items():
                    seen[(pid, tid)] = ns
                    before = self._last.get((pid, tid))
                    if before is not None:
                        wait = max(wait, (ns - before) / 1e6)
            worst[name] = round(wait, 2)
        self._last = seen
        with self._lock:
            self.samples.append((now, worst))

    def over(self, t0: float, t1: float) -> dict[str, float | None]:
        """The worst run-queue wait (ms within one sample interval) of each group in ``[t0, t1]``."""
        with self._lock:
            rows = [w for t, w in self.samples if t0 <= t <= t1 + self.sample_s]
        names = {n for w in rows for n in w}
        return {n: max((w[n] for w in rows if n in w), default=None) for n in sorted(names)}
