"""What the load engine measured, binned by wall-clock time so that steps can be cut afterwards.

Every worker process records into its own :class:`Recorder`; in distributed mode a worker ships
``drain()`` with each Locust report and the master ``merge()``s it. Bins are 1/``BINS_PER_S``
seconds of wall-clock time at which a transaction *started*, so the master can assign them to the
steps of its timeline (a 2 s spike is 20 bins) without the workers knowing when the run began::

    rec.sample("call:setup", t_wall, 0.41)              # success, ms
    rec.failure("call:setup", t_wall, 2.0, "486")       # failure with its SIP status (or "timeout")
    rec.gauge("calls_up", t_wall, 812)                   # maximum within the second
    rec.count("retransmits", t_wall)
"""

from __future__ import annotations

from typing import Any

from harness.load.histogram import Hist

__all__ = ["BINS_PER_S", "SUM_GAUGES", "Recorder", "bin_of"]

BINS_PER_S = 10

#: gauges that add up across workers (each worker holds its own calls); the others take the maximum
SUM_GAUGES = frozenset({"calls_up", "in_flight", "rtp_streams"})


def bin_of(t_wall: float) -> int:
    return int(t_wall * BINS_PER_S)


class Recorder:
    __slots__ = ("counters", "failures", "gauges", "hists")

    def __init__(self) -> None:
        self.hists: dict[tuple[int, str], Hist] = {}
        self.failures: dict[tuple[int, str, str], int] = {}
        self.gauges: dict[tuple[int, str], float] = {}
        self.counters: dict[tuple[int, str], int] = {}

    def sample(self, name: str, t_wall: float, ms: float) -> None:
        key = (bin_of(t_wall), name)
        h = self.hists.get(key)
        if h is None:
            h = self.hists[key] = Hist()
        h.add(ms)

    def failure(self, name: str, t_wall: float, ms: float, code: str) -> None:
        key = (bin_of(t_wall), name, code)
        self.failures[key] = self.failures.get(key, 0) + 1

    def gauge(self, name: str, t_wall: float, value: float) -> None:
        """Maximum of ``value`` within the whole second (bin number of its start): workers sample at
        their own moments, and summing across workers needs the same span from each."""
        key = (int(t_wall) * BINS_PER_S, name)
        if value > self.gauges.get(key, float("-inf")):
            self.gauges[key] = value

    def count(self, name: str, t_wall: float, n: int = 1) -> None:
        key = (bin_of(t_wall), name)
        self.counters[key] = self.counters.get(key, 0) + n

    # ---- shipping between processes ---------------------------------------------------------------
    def to_wire(self) -> dict[str, Any]:
        return {"h": [[s, n, h.to_wire()] for (s, n), h in self.hists.items()],
                "f": [[s, n, c, k] for (s, n, c), k in self.failures.items()],
                "g": [[s, n, v] for (s, n), v in self.gauges.items()],
                "c": [[s, n, k] for (s, n), k in self.counters.items()]}

    def drain(self) -> dict[str, Any]:
        """Everything recorded since the last drain, as plain data; the recorder starts empty again."""
        data = self.to_wire()
        self.hists, self.failures, self.gauges, self.counters = {}, {}, {}, {}
        return data

    def merge(self, data: dict[str, Any], *, same_process: bool = False) -> None:
        """Add a worker's drained data. Gauges from one process keep their maximum; across processes
        the ``SUM_GAUGES`` add up (``same_process=False``) per bin."""
        for s, n, h in data.get("h", []):
            key = (int(s), str(n))
            mine = self.hists.get(key)
            if mine is None:
                mine = self.hists[key] = Hist()
            mine.merge(Hist.from_wire(h))
        for s, n, c, k in data.get("f", []):
            fkey = (int(s), str(n), str(c))
            self.failures[fkey] = self.failures.get(fkey, 0) + int(k)
        for s, n, v in data.get("g", []):
            gkey = (int(s), str(n))
            old = self.gauges.get(gkey)
            if old is None:
                self.gauges[gkey] = float(v)
            elif n in SUM_GAUGES and not same_process:
                self.gauges[gkey] = old + float(v)
            else:
                self.gauges[gkey] = max(old, float(v))
        for s, n, k in data.get("c", []):
            ckey = (int(s), str(n))
            self.counters[ckey] = self.counters.get(ckey, 0) + int(k)
