"""The scheduler's lazy timer heap: a flow is resumed at the time it last asked for, never earlier
and never twice, however often it moved that time; ended flows leave no timer behind."""

from __future__ import annotations

import math
from collections.abc import Generator

from harness.load.scheduler import Scheduler


class Trace(list[tuple[str, float | None]]):
    """What a test flow saw, in order."""


def waiter(name: str, dues: list[float], trace: Trace) -> Generator[float, object, None]:
    """Yields each of ``dues`` in turn and notes every resumption (None: its time came)."""
    for due in dues:
        item = yield due
        trace.append((name, None if item is None else 1.0))


def test_a_later_time_is_honoured_without_a_push_per_move() -> None:
    s, trace = Scheduler(), Trace()
    s.start(waiter("a", [0.5, 10.0, 12.0], trace))  # asks for 0.5 first
    assert len(s.heap) == 1
    s.tick(0.1)
    assert trace == []
    s.tick(0.5)  # due: resumed once, then asks for 10.0
    assert trace == [("a", None)]
    s.tick(9.99)
    assert trace == [("a", None)]
    s.tick(10.0)
    assert trace == [("a", None), ("a", None)]
    s.tick(12.0)
    assert len(trace) == 3 and len(s) == 0


def test_a_datagram_that_moves_the_time_later_keeps_one_heap_entry() -> None:
    s, trace = Scheduler(), Trace()

    def flow() -> Generator[float, object, None]:
        s.bind("cid-1")
        item = yield 0.5  # waits for a response, retransmission at 0.5
        trace.append(("got", None if item is None else 1.0))
        item = yield 30.0  # a provisional came: now only the answer timeout
        trace.append(("timeout" if item is None else "final", None))

    s.start(flow())
    assert s.deliver(b"cid-1", (0.1, b"SIP/2.0 180 Ringing"))
    assert len(s.heap) == 1  # the 0.5 entry stays; 30.0 was not pushed
    s.tick(0.5)  # the old entry pops: re-queued at 30.0, the flow is not resumed
    assert trace == [("got", 1.0)]
    assert [e[0] for e in s.heap] == [30.0]
    s.tick(29.9)
    assert trace == [("got", 1.0)]
    s.tick(30.0)
    assert trace == [("got", 1.0), ("timeout", None)]


def test_an_earlier_time_is_pushed_and_the_stale_entry_is_dropped() -> None:
    s, trace = Scheduler(), Trace()
    s.start(waiter("a", [5.0, 1.0, math.inf], trace))
    assert s.tick(4.0) == 0
    assert s.tick(5.0) == 2  # resumed, asks for 1.0 (already past): resumed again in the same tick
    assert trace == [("a", None), ("a", None)]
    s.tick(100.0)  # waits for a datagram only: nothing resumes it
    assert len(trace) == 2 and len(s) == 1 and not s.heap


def test_ended_flows_leave_their_entries_to_be_dropped() -> None:
    s, trace = Scheduler(), Trace()

    def quick() -> Generator[float, object, None]:
        s.bind("cid-2")
        yield 0.5
        trace.append(("end", None))

    s.start(quick())
    s.deliver(b"cid-2", (0.1, b"SIP/2.0 200 OK"))  # ends the flow before its timer
    assert len(s) == 0 and trace == [("end", None)]
    assert s.tick(1.0) == 0 and not s.heap
    assert not s.deliver(b"cid-2", (0.2, b"SIP/2.0 200 OK"))  # its Call-ID is unbound
