"""The load engine of one process: socket, RTP pump, UAC, admission control, and the drain at the end.

Locust users (:mod:`harness.load.users`) ask the engine to start transactions; the engine runs each
as a generator flow in its :class:`~harness.load.scheduler.Scheduler` (not in the user's greenlet,
so a user that Locust stops never leaves a call half-open), bounds how many run at once and in
total, and reports every result twice: to Locust's request event (for its
statistics, CSVs and web UI) and to the :class:`~harness.load.recorder.Recorder` (microsecond
histograms per second, failures by SIP status)::

    engine = LoadEngine(plan, fire=environment.events.request.fire)
    engine.start()
    engine.spawn()            # one transaction of the profile's mix; False when over a bound
    engine.drain(timeout=10)  # holding calls hang up now; stragglers are killed after ``timeout``
    engine.close()

Imports gevent: only the load run imports this module.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event

from harness.contracts.errors import SipFailure
from harness.load.endpoint import Clock, Endpoint
from harness.load.plan import UacPlan
from harness.load.recorder import Recorder
from harness.load.rtp_pump import RtpPump, frame_set
from harness.load.scheduler import Scheduler
from harness.load.shapes import Timeline
from harness.load.uac import Uac

__all__ = ["LoadEngine"]

GAUGE_INTERVAL_S = 0.25
PACE_S = 0.005  # the pacer wakes at least this often (arrivals due in between go out together)
PACE_MIN_S = 0.001  # ... and at most this often: at high rates arrivals go out in small batches
TICK_S = 0.005  # timer resolution of the flows (retransmissions, hold ends); measurements are exact
GC_YOUNG = 20000  # allocations between young-generation collections (Python's default: 700)
TICK_MIN_S = 0.001  # ... and the ticker never spins: what falls due within a millisecond runs together


class LoadEngine:
    def __init__(self, plan: UacPlan, *, fire: Callable[..., Any] | None = None, recorder: Recorder | None = None,
                 poisson: bool = False):
        self.plan = plan
        self.fire = fire
        self.clock = Clock()
        self.recorder = recorder if recorder is not None else Recorder()
        self.scheduler = Scheduler(on_error=self._on_flow_error)
        self.ep = Endpoint((plan.host, plan.port), self.scheduler.deliver, plan.local_ip, on_stray=self._on_stray,
                           on_error=lambda: self._count("socket_errors"))
        self.rtp = RtpPump(plan.local_ip, frame_set(plan.rtp_audio) if plan.rtp else {}, plan.rtp_streams)
        self.uac = Uac(plan, send=self.ep.send, via=self.ep.via, report=self._report, bind=self.scheduler.bind,
                       unbind=self.scheduler.unbind, rtp=self.rtp, stopping=lambda: self.draining,
                       count=self._count, now=self.clock.now)
        self.kinds = list(plan.mix)
        self.weights = [plan.mix[k] for k in self.kinds]
        self.started = 0
        self.draining = False
        self.poisson = poisson
        self._timeline: Timeline | None = None  # rate mode: arrivals follow it from ``_t0`` on
        self._t0 = 0.0
        self._share = 1.0
        self.flow_errors: list[str] = []
        self._greenlets: list[gevent.Greenlet] = []
        self._gc_before: tuple[int, int, int] | None = None

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self) -> None:
        # Every call makes a few dozen short-lived objects (generator frames, transactions, parsed
        # responses): at thousands of calls a second the cyclic collector's default young-generation
        # trigger (700 objects) runs it several thousand times a second, each pass also walking what
        # Locust and gevent allocated at start-up. Freeze those and collect young objects less often.
        # close() puts the process's collector back as it was (the report and media analysis follow).
        self._gc_before = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(GC_YOUNG, 20, 50)
        self.ep.start()
        self.rtp.start()
        self._greenlets = [gevent.spawn(self._tick_loop), gevent.spawn(self._gauge_loop),
                           gevent.spawn(self._pace_loop)]

    def drain(self, timeout: float = 10.0) -> int:
        """Stop admitting, end held calls now, wait up to ``timeout`` s; returns the flows abandoned."""
        self.draining = True
        self.scheduler.wake_all()
        deadline = self.clock.now() + timeout
        while len(self.scheduler) and self.clock.now() < deadline:
            gevent.sleep(0.05)
        left = len(self.scheduler)
        if left:
            self._count("abandoned_at_stop", left)
            self.scheduler.close()
        self._sample_gauges()
        rtp = self.rtp
        for name, n in (("rtp_packets_sent", rtp.sent), ("rtp_packets_received", rtp.received),
                        ("rtp_refused_not_loopback", rtp.refused), ("rtp_over_budget", rtp.over_budget)):
            if n:
                self._count(name, n)
        return left

    def close(self) -> None:
        gevent.killall(self._greenlets, block=True, timeout=2)
        self._greenlets = []
        self.scheduler.close()
        self.rtp.close()
        self.ep.close()
        if self._gc_before is not None:
            gc.set_threshold(*self._gc_before)
            gc.unfreeze()
            self._gc_before = None

    # ---- admission --------------------------------------------------------------------------------
    def pick(self) -> str:
        return self.kinds[0] if len(self.kinds) == 1 else random.choices(self.kinds, self.weights)[0]

    def spawn(self, kind: str | None = None, on_done: Callable[[], None] | None = None) -> bool:
        """Start one transaction (``kind`` or one drawn from the mix); False when a bound says no."""
        if self.draining or self.started >= self.plan.max_transactions:
            self._count("skipped_bound")
            return False
        if len(self.scheduler) >= self.plan.max_in_flight:
            self._count("skipped_in_flight")  # the generator is at its limit: shows as a rate shortfall
            return False
        self.started += 1
        self.scheduler.start(self.uac.flow(kind or self.pick()), on_done)
        return True

    def follow(self, timeline: Timeline, t0: float, share: float = 1.0) -> None:
        """Rate mode: issue ``share`` of the timeline's calls/s, with ``t0`` (``clock.now()`` time) as
        its start. The pacer reads the timeline at every wake-up, so ramps and spikes are exact to
        milliseconds rather than to Locust's one-second shape ticks."""
        self._t0, self._share, self._timeline = t0, share, timeline

    def rate_now(self) -> float:
        tl = self._timeline
        if tl is None or self.draining:
            return 0.0
        value = tl.value_at(self.clock.now() - self._t0)
        return 0.0 if value is None else value * self._share

    def run_one(self, kind: str | None = None) -> bool:
        """Start one transaction and wait for it to end; False when it was not admitted."""
        done = Event()
        if not self.spawn(kind, done.set):
            return False
        done.wait()
        return True

    # ---- reporting --------------------------------------------------------------------------------
    def _report(self, name: str, t_start: float, ms: float, error: str | None) -> None:
        wall = self.clock.wall(t_start)
        if error is None:
            self.recorder.sample(name, wall, ms)
        else:
            self.recorder.failure(name, wall, ms, error)
        if self.fire is not None:
            self.fire(request_type="SIP", name=name, response_time=ms, response_length=0,
                      exception=None if error is None else SipFailure(error))

    def _count(self, name: str, n: int = 1) -> None:
        self.recorder.count(name, self.clock.wall(self.clock.now()), n)

    def _on_stray(self, _data: bytes) -> None:
        self._count("stray")

    def _on_flow_error(self, text: str) -> None:
        self._count("flow_errors")
        if len(self.flow_errors) < 5:
            self.flow_errors.append(text)

    # ---- loops ------------------------------------------------------------------------------------
    def _tick_loop(self) -> None:
        """Resume the flows whose timers are due; sleeps until the next one (at most TICK_S)."""
        sched, now, drain = self.scheduler, self.clock.now, self.ep.drain
        while True:
            drain()  # responses first: one already here must not lose to its retransmission timer
            t = now()
            sched.tick(t)
            gevent.sleep(min(TICK_S, max(TICK_MIN_S, sched.next_due() - now())))

    def _pace_loop(self) -> None:
        """Open-loop arrivals at ``self.rate``: evenly spaced or Poisson, never waiting for answers."""
        now = self.clock.now
        nxt: float | None = None
        while True:
            rate = self.rate_now()
            t = now()
            if rate <= 0.0:
                nxt = None
            else:
                if nxt is None or nxt < t - 1.0:  # (re)starting, or a stall: no burst to catch up
                    nxt = t + (random.expovariate(rate) if self.poisson else random.uniform(0.0, 1.0 / rate))
                if nxt <= t:
                    self.ep.drain()  # the running calls' responses before new calls
                while nxt <= t:
                    self.spawn()
                    nxt += random.expovariate(rate) if self.poisson else 1.0 / rate
            gevent.sleep(PACE_S if nxt is None else min(PACE_S, max(PACE_MIN_S, nxt - now())))

    def _sample_gauges(self) -> None:
        wall = self.clock.wall(self.clock.now())
        self.recorder.gauge("calls_up", wall, self.uac.up)
        self.recorder.gauge("in_flight", wall, len(self.scheduler))
        self.recorder.gauge("rtp_streams", wall, len(self.rtp.streams))

    def _gauge_loop(self) -> None:
        import psutil  # a Locust dependency

        proc = psutil.Process()
        proc.cpu_percent(None)
        n = 0
        while True:
            gevent.sleep(GAUGE_INTERVAL_S)
            self._sample_gauges()
            n += 1
            if n % int(1 / GAUGE_INTERVAL_S) == 0:
                self.recorder.gauge("cpu_pct", self.clock.wall(self.clock.now()), proc.cpu_percent(None))
