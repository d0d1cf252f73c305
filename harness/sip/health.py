"""A party's own health, measured inside the pjsua2 child: is the harness itself keeping time?

Two clocks are watched, in 100 ms buckets kept for the last hour:

- **wake-up lateness**: a watchdog thread asks to wake every 10 ms and notes how late it woke. A party
  that wakes late answers SIP late and reads its pipe late.
- **media clock lateness**: a silent port on the conference bridge notes when the bridge's clock ticks.
  The same tick encodes and sends the party's RTP and plays its jitter buffer out, so a late tick is
  RTP the harness itself sent late, and a gap that the far end's jitter buffer has to absorb.

The parent asks for the buckets with the ``health`` command and judges windows of them
(:mod:`harness.health`). Both probes take microseconds a tick; the media probe runs in pjmedia's clock
thread, so it holds the GIL only for an append.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

__all__ = ["BUCKET_S", "HealthBook", "Watchdog", "make_clock_probe"]

BUCKET_S = 0.1
KEEP_BUCKETS = 36_000  # one hour
WATCHDOG_PERIOD_S = 0.010


class HealthBook:
    """Per-bucket maxima of two lateness series, safe to feed from two threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # bucket index -> [watchdog max ms, watchdog samples, clock max ms, clock ticks]
        self._buckets: deque[list[float]] = deque(maxlen=KEEP_BUCKETS)
        self._index: deque[int] = deque(maxlen=KEEP_BUCKETS)

    def _bucket(self, now: float) -> list[float]:
        idx = int(now / BUCKET_S)
        if not self._index or self._index[-1] != idx:
            self._index.append(idx)
            self._buckets.append([0.0, 0.0, 0.0, 0.0])
        return self._buckets[-1]

    def watchdog(self, now: float, late_ms: float) -> None:
        with self._lock:
            b = self._bucket(now)
            b[0] = max(b[0], late_ms)
            b[1] += 1

    def clock(self, now: float, late_ms: float) -> None:
        with self._lock:
            b = self._bucket(now)
            b[2] = max(b[2], late_ms)
            b[3] += 1

    def since(self, t0: float, t1: float | None = None) -> dict[str, Any]:
        """Buckets from monotonic time ``t0`` (to ``t1``): ``t`` starts, and the four series."""
        lo, hi = int(t0 / BUCKET_S), (int(t1 / BUCKET_S) if t1 is not None else None)
        with self._lock:
            rows = [(i, b) for i, b in zip(self._index, self._buckets, strict=True)
                    if i >= lo and (hi is None or i <= hi)]
        return {"bucket_s": BUCKET_S, "t": [round(i * BUCKET_S, 1) for i, _ in rows],
                "wake_max_ms": [round(b[0], 2) for _, b in rows], "wake_n": [int(b[1]) for _, b in rows],
                "clock_max_ms": [round(b[2], 2) for _, b in rows], "clock_n": [int(b[3]) for _, b in rows]}


class Watchdog(threading.Thread):
    """Wakes every 10 ms on an absolute schedule and books how late each wake-up was."""

    def __init__(self, book: HealthBook, period_s: float = WATCHDOG_PERIOD_S):
        super().__init__(name="health-watchdog", daemon=True)
        self.book, self.period = book, period_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        due = time.monotonic() + self.period
        while not self._stop_event.is_set():
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            self.book.watchdog(now, max(0.0, (now - due) * 1000.0))
            due += self.period
            if due < now:  # a long stall: book it once, then keep the schedule from now
                due = now + self.period

    def stop(self) -> None:
        self._stop_event.set()


def make_clock_probe(pj: Any, book: HealthBook, clock_rate: int, ptime_ms: int = 20) -> Any:
    """A silent pjsua2 port whose frame callback books how late the conference bridge's clock ticks.

    Connect a source to it (``source.startTransmit(probe)``) so that the bridge writes to it on every
    tick. Lateness is measured against the tick schedule: the earliest tick seen anchors it, and each
    later tick is due ``ptime_ms`` after the one before.
    """

    class ClockProbe(pj.AudioMediaPort):
        def __init__(self) -> None:
            super().__init__()
            self.due: float | None = None
            self.period = ptime_ms / 1000.0

        def onFrameReceived(self, frame: Any) -> None:
            now = time.monotonic()
            if self.due is None or now < self.due - 0.005 or now > self.due + 0.5:
                # first tick, a tick earlier than the schedule (re-anchor), or a stall so long that pjmedia
                # restarts its own schedule (500 ms): book nothing, start from here
                late = 0.0 if self.due is None or now < self.due else (now - self.due) * 1000.0
                self.due = now
            else:
                late = max(0.0, (now - self.due) * 1000.0)
            book.clock(now, late)
            self.due += self.period

    probe = ClockProbe()
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate = clock_rate
    fmt.channelCount = 1
    fmt.bitsPerSample = 16
    fmt.frameTimeUsec = ptime_ms * 1000
    probe.createPort("health-clock", fmt)
    return probe
