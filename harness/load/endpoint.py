"""One UDP socket per load process, and the receiver that routes every datagram to its call.

The receiver greenlet reads the socket, stamps the arrival time at once (so a busy process does not
add its own scheduling to the measured response time), reads the Call-ID and hands
``(t_received, data)`` to ``deliver(call_id, item)`` (the scheduler, which resumes the call's flow;
the flow matches branch and CSeq to its transactions). Datagrams for no known call are strays:
requests among them are answered (481, or 200 to OPTIONS) and all are counted. Every packet goes
to the target address only.

Imports gevent: only the load run imports this module.
"""

from __future__ import annotations

import _socket  # the C socket type: gevent's patched socket adds a Python frame to every call
import contextlib
import struct
import sys
import time
from collections.abc import Callable

import gevent
from gevent.socket import wait_write

from harness.load.wire import call_id_key, parse_request, reply_to

__all__ = ["Clock", "Endpoint"]

BATCH_MIN = 4  #: datagrams in one wake-up from which the receiver batches
BATCH_S = 0.001  #: ... by sleeping this long rather than waiting for the next datagram
#: Linux's option number (the socket module names it from Python 3.12 on); elsewhere no kernel stamps
_SO_TIMESTAMPNS: int | None = getattr(_socket, "SO_TIMESTAMPNS", 35 if sys.platform.startswith("linux") else None)
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux
_ANC_SIZE = 64


class Clock:
    """Monotonic time for durations, mapped to wall-clock time for binning by second."""

    def __init__(self) -> None:
        self.perf0 = time.perf_counter()
        self.wall0 = time.time()

    @staticmethod
    def now() -> float:
        return time.perf_counter()

    def wall(self, perf: float) -> float:
        return self.wall0 + (perf - self.perf0)


class Endpoint:
    """A non-blocking UDP socket *connected* to the target: the kernel skips the route lookup on
    every send and drops datagrams from anyone else, and no packet can go anywhere but the target.
    It is the C socket type, never gevent's wrapper: the receiver waits on the hub itself, so the
    wrapper would only add a Python call to each of the several sends and receives of a call."""

    def __init__(self, target: tuple[str, int], deliver: Callable[[bytes, tuple[float, bytes]], bool],
                 local_ip: str = "127.0.0.1", *, on_stray: Callable[[bytes], None] | None = None,
                 on_error: Callable[[], None] | None = None, rcvbuf: int = 8 << 20):
        self.target = target
        self.local_ip = local_ip
        self.deliver = deliver
        self.on_stray = on_stray
        self.on_error = on_error
        self.strays = 0
        self.sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        for opt in (_socket.SO_RCVBUF, _socket.SO_SNDBUF):
            # a smaller buffer only means drops at extreme rates; they show as retransmissions
            with contextlib.suppress(OSError):
                self.sock.setsockopt(_socket.SOL_SOCKET, opt, rcvbuf)
        if _SO_TIMESTAMPNS is not None:
            with contextlib.suppress(OSError):  # without kernel stamps, the receiver's own clock is used
                self.sock.setsockopt(_socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self.sock.bind((local_ip, 0))
        self.sock.connect(target)
        self.port: int = self.sock.getsockname()[1]
        self._receiver: gevent.Greenlet | None = None

    @property
    def via(self) -> str:
        return f"{self.local_ip}:{self.port}"

    def start(self) -> None:
        if self._receiver is None:
            self._receiver = gevent.spawn(self._receive)

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.kill(block=True, timeout=2)
            self._receiver = None
        self.sock.close()

    def send(self, data: bytes) -> float:
        """Send to the target; returns the send time (monotonic seconds)."""
        t = time.perf_counter()
        try:
            self.sock.send(data)
        except BlockingIOError:  # the send buffer is full: wait for room once, as a busy host would
            wait_write(self.sock.fileno(), timeout=1.0)
            with contextlib.suppress(OSError):
                self.sock.send(data)
        except OSError:  # e.g. ECONNREFUSED from an earlier ICMP port unreachable: the timers resend
            if self.on_error is not None:
                self.on_error()
        return t

    def drain(self) -> int:
        """Read and hand on every datagram waiting in the socket; returns how many there were.

        The engine calls this before it fires timers or starts calls, so a busy process answers
        what has arrived first: a response waiting in the socket never loses to the retransmission
        timer of its own transaction, and new calls never pile up ahead of the running ones."""
        recvmsg, deliver, now = self.sock.recvmsg, self.deliver, time.perf_counter
        unpack = _TIMESPEC.unpack
        offset = time.time() - now()  # realtime - monotonic: converts the kernel's stamps to the engine's clock
        n = 0
        while True:
            try:
                data, anc, _flags, _addr = recvmsg(65535, _ANC_SIZE)
            except BlockingIOError:
                return n
            except OSError:  # ICMP errors (nobody listens at the target) surface here
                if self.on_error is not None:
                    self.on_error()
                return n
            n += 1
            t = now()
            if anc and anc[0][1] == _SO_TIMESTAMPNS:
                sec, nsec = unpack(anc[0][2])
                stamped = sec + nsec * 1e-9 - offset
                if t - 1.0 < stamped <= t:  # else a clock step since the offset was read: keep our own time
                    t = stamped
            key = call_id_key(data)
            if key is None or not deliver(key, (t, data)):
                self._stray(data)

    def _receive(self) -> None:
        """Wait for datagrams and drain them.

        At a few datagrams per wake-up the receiver waits on the socket; when a wake-up finds a
        batch (thousands of calls a second) it sleeps BATCH_S instead, so that one wake-up serves
        dozens of datagrams and the replies (ACK, BYE) leave in bursts the far end reads together
        (fewer wake-ups on both sides: ~90 -> ~76 us of CPU per call at 10,000 calls/s against a
        SIPp UAS, measured back to back). The response times do not grow by that wait:
        each datagram carries the time the kernel received it (SO_TIMESTAMPNS), not the time this
        loop got round to it."""
        hub = gevent.get_hub()
        readable = hub.loop.io(self.sock.fileno(), 1)  # one watcher for the socket's life, not one per wait
        wait, sleep, drain = hub.wait, gevent.sleep, self.drain
        while True:
            if drain() >= BATCH_MIN:
                sleep(BATCH_S)
            else:
                wait(readable)

    def _stray(self, data: bytes) -> None:
        self.strays += 1
        if self.on_stray is not None:
            self.on_stray(data)
        req = parse_request(data)
        if req is None or req.method == "ACK":
            return  # late responses (retransmitted 200s, 487s) to calls that are over: nothing to do
        if req.method == "OPTIONS":
            self.send(reply_to(req, 200, "OK", "ld"))
        else:
            self.send(reply_to(req, 481, "Call/Transaction Does Not Exist", "ld"))
