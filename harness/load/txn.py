"""What the load engine's UAC keeps of each exchange: a client transaction (:class:`Txn`, RFC 3261 timers
from :mod:`harness.load.timers`), a dialog as the UAC sees it (:class:`Call`), and the types a flow is
made of: a :data:`Flow` yields the time it next needs to run and is resumed with an :data:`Item`
``(t_received, datagram)`` or ``None``; results go to a :class:`Reporter`; a call's RTP to an
:class:`RtpControl`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Protocol

from harness.load.timers import ClientTimers
from harness.load.wire import Response

__all__ = ["Call", "Flow", "Item", "Reporter", "RtpControl", "Txn", "ms_between", "rang"]

Item = tuple[float, bytes]  # (t_received, datagram)
#: yields "resume me at this time" (math.inf: only for a datagram), receives an Item or None
Flow = Generator[float, "Item | None", None]


class Reporter(Protocol):
    def __call__(self, name: str, t_start: float, ms: float, error: str | None) -> None: ...


class RtpControl(Protocol):
    """What a call needs of the RTP pump (:class:`harness.load.rtp_pump.RtpPump`)."""

    port: int

    def open(self, ip: str, port: int, pt: int) -> int | None: ...

    def close_stream(self, sid: int | None) -> None: ...


class Txn:
    """One client transaction: what was sent, its timers, and what came back when."""

    __slots__ = ("ack", "branch", "data", "final", "method", "routes", "ruri", "t_1xx", "t_180", "t_final", "t_sent",
                 "t_start", "timed_out", "timers")

    def __init__(self, method: str, branch: str, data: bytes, timers: ClientTimers, t_sent: float, ruri: str = "",
                 routes: tuple[str, ...] = ()):
        self.method, self.branch, self.data, self.timers = method, branch, data, timers
        self.ruri, self.routes = ruri, routes
        self.t_sent = self.t_start = t_sent
        self.t_1xx: float | None = None
        self.t_180: float | None = None
        self.final: Response | None = None
        self.t_final: float | None = None
        self.timed_out = False
        self.ack: bytes | None = None  # the ACK of a non-2xx final response, resent if it comes again

    @property
    def done(self) -> bool:
        return self.final is not None or self.timed_out

    def on_response(self, r: Response, t: float) -> bool:
        """Take a response; False when it repeats a final response already taken."""
        if self.final is not None:
            return False
        if r.status < 200:
            if self.t_1xx is None:
                self.t_1xx = t
            if self.t_180 is None and r.status in (180, 183):
                self.t_180 = t
        else:
            self.final, self.t_final = r, t
        self.timers.response(r.status, t)
        return True


class Call:
    """One Call-ID: the dialog as the UAC sees it."""

    __slots__ = ("acks", "call_id", "cseq", "from_hdr", "ftag", "remote_bye", "routes", "ruri", "target", "to_hdr")

    def __init__(self, call_id: str, ruri: str, from_hdr: str, to_hdr: str, ftag: str):
        self.call_id, self.ruri = call_id, ruri
        self.from_hdr, self.to_hdr, self.ftag = from_hdr, to_hdr, ftag
        self.cseq = 0
        self.target = ruri  # remote target: the 2xx Contact once there is a dialog
        self.routes: tuple[str, ...] = ()
        self.acks: dict[int, bytes] = {}  # CSeq -> ACK of its 2xx, resent when the 2xx is retransmitted
        self.remote_bye = False


def ms_between(a: float, b: float) -> float:
    return (b - a) * 1000.0


def rang(txn: Txn) -> Callable[[], bool]:
    """Done once ``txn`` has a provisional or a final response (or timed out)."""
    return lambda: txn.done or txn.t_1xx is not None
