"""Drives the UAC's generator flows: resumes each with its datagrams and at its deadlines.

A flow (:data:`harness.load.txn.Flow`) yields the time it wants to be resumed at; the scheduler
keeps those in a heap and :meth:`Scheduler.tick` resumes the ones that are due. Datagrams reach the
flow that bound their Call-ID through :meth:`Scheduler.deliver`. Everything runs on the caller's
thread of control: the gevent loop (receiver and ticker greenlets) in a load run, plain calls with a
fake clock in unit tests::

    s = Scheduler()
    s.start(uac.call())                  # runs until its first wait (the INVITE is sent)
    s.deliver(b"callid@host", (t, data))  # a response arrives
    s.tick(now)                           # retransmissions, timeouts and hold ends that are due

A flow that raises is ended and counted (``errors``), never allowed to stop the others.
"""

from __future__ import annotations

import heapq
import itertools
import math
import traceback
from collections.abc import Callable
from typing import Any

from harness.load.txn import Flow, Item

__all__ = ["Run", "Scheduler"]


class Run:
    """One flow and its place in time: ``due`` is when it asked to be resumed, ``queued`` the earliest
    time it has an entry in the heap for (math.inf: none)."""

    __slots__ = ("cids", "due", "flow", "on_done", "queued")

    def __init__(self, flow: Flow, on_done: Callable[[], None] | None):
        self.flow: Flow | None = flow
        self.on_done = on_done
        self.due = self.queued = math.inf
        self.cids: list[bytes] = []


class Scheduler:
    def __init__(self, on_error: Callable[[str], None] | None = None):
        self.heap: list[tuple[float, int, Run]] = []
        self.by_cid: dict[bytes, Run] = {}
        self.active: set[Run] = set()
        self.errors = 0
        self.on_error = on_error
        self._seq = itertools.count()
        self._current: Run | None = None

    def __len__(self) -> int:
        return len(self.active)

    # ---- flows ------------------------------------------------------------------------------------
    def start(self, flow: Flow, on_done: Callable[[], None] | None = None) -> Run:
        run = Run(flow, on_done)
        self.active.add(run)
        self._advance(run, None)
        return run

    def bind(self, call_id: str) -> None:
        """Called by the running flow: datagrams of ``call_id`` are for it."""
        run = self._current
        if run is None:
            raise RuntimeError("bind() outside a running flow")
        key = call_id.encode()
        self.by_cid[key] = run
        run.cids.append(key)

    def unbind(self, call_id: str) -> None:
        self.by_cid.pop(call_id.encode(), None)

    # ---- events -----------------------------------------------------------------------------------
    def deliver(self, key: bytes, item: Item) -> bool:
        """Hand a datagram to the flow bound to Call-ID ``key``; False when none is."""
        run = self.by_cid.get(key)
        if run is None:
            return False
        self._advance(run, item)
        return True

    def tick(self, now: float) -> int:
        """Resume every flow whose time has come; returns how many were resumed.

        The heap is lazy: a flow that moves its time *later* (a response came, the next timer is a
        retransmission 0.5 s away) keeps its earlier entry, and only an earlier time is pushed. An
        entry that pops before the flow's time re-queues it then; entries of ended flows are dropped.
        So a call costs about two heap operations, not one per datagram, and the heap holds the
        next half second of calls rather than every answer timeout of the last ten."""
        heap, n, pop, push = self.heap, 0, heapq.heappop, heapq.heappush
        while heap and heap[0][0] <= now:
            t, _seq, run = pop(heap)
            if run.queued != t or run.flow is None:
                continue  # superseded by an earlier entry, or the flow ended
            run.queued = math.inf
            if run.due <= now:
                n += 1
                self._advance(run, None)
            elif run.due < math.inf:
                run.queued = run.due
                push(heap, (run.due, next(self._seq), run))
        return n

    def wake_all(self) -> None:
        """Resume every flow now (the run drains: holding calls see ``stopping()`` and hang up)."""
        for run in list(self.active):
            if run in self.active:
                self._advance(run, None)

    def next_due(self) -> float:
        return self.heap[0][0] if self.heap else math.inf

    def _advance(self, run: Run, item: Item | None) -> None:
        flow = run.flow
        if flow is None:
            return
        prev, self._current = self._current, run
        try:
            due = flow.send(item)
        except StopIteration:
            self._finish(run)
            return
        except Exception:  # a bug in one flow must not take the load run down: count it, keep going
            self.errors += 1
            if self.on_error is not None:
                self.on_error(traceback.format_exc(limit=6))
            self._finish(run)
            return
        finally:
            self._current = prev
        run.due = due
        if due < run.queued:
            run.queued = due
            heapq.heappush(self.heap, (due, next(self._seq), run))

    def _finish(self, run: Run) -> None:
        self.active.discard(run)
        run.flow = None  # its heap entries are dropped as they come up
        for key in run.cids:
            if self.by_cid.get(key) is run:
                del self.by_cid[key]
        if run.on_done is not None:
            run.on_done()

    def close(self) -> None:
        """End every flow without resuming it (GeneratorExit runs their ``finally`` blocks)."""
        for run in list(self.active):
            if run.flow is not None:
                run.flow.close()
            self._finish(run)
        self.heap.clear()

    def stats(self) -> dict[str, Any]:
        return {"active": len(self.active), "bound": len(self.by_cid), "timers": len(self.heap),
                "errors": self.errors}
