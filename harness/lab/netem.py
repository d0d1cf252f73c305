"""A userspace netem: the line between the parties and the lab in its network namespace.

The lab in namespace mode (:mod:`harness.lab.netns`) is joined to the root namespace by a pair of TUN
devices, and this process is the wire between them: every packet read from one device is written to
the other, after the impairment set for its direction. It is a process of its own (the lab component
``netem``) so its timing does not share a GIL with the harness.

Why not ``tc netem``: kernels built without ``CONFIG_NET_SCH_NETEM`` (the machines this project is built
and tested on among them: no netem, no prio qdisc) cannot load it, while a line in userspace behaves the
same everywhere, can be read in one file and is driven by unit tests with a seeded random source. The
line is loopback-only in effect: its two ends are addresses that exist only on this machine, and the
namespace has no route but the line.

What a direction can do (:class:`Impairment`), in netem's terms:

- ``loss_pct`` random loss, or with ``burst`` > 1 a Gilbert-Elliott (``loss gemodel``) two-state chain
  whose bad state loses every packet: mean burst length ``burst`` packets, long-run loss ``loss_pct``;
- ``delay_ms`` and ``jitter_ms``: each packet waits delay +- jitter (uniform, netem's default); packets
  keep their order unless ``reorder_pct`` sends that share of them at once (netem's ``reorder``);
- ``rate_kbit``: serialisation at that bit rate, with a tail drop past 500 ms of queue;
- an outage: every packet lost for N seconds, then the impairment before it again;
- ``media_only``: SIP (UDP to or from the lab's SIP port) passes untouched; RTP and the rest suffer.

Control: JSON datagrams on a UNIX socket (``set``, ``outage``, ``clear``, ``status``), one reply each;
:class:`harness.lab.netns.LineControl` is the client. SIGTERM stops the process; the TUN devices, which
exist only while their descriptors are open, vanish with it.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

__all__ = ["DIRECTIONS", "Impairment", "Line", "LossModel", "is_sip", "main"]

DIRECTIONS = ("to_lab", "from_lab")
QUEUE_LIMIT_S = 0.5  #: a rate-limited line drops what would wait longer than this (tail drop)
MAX_OUTAGE_S = 600.0


@dataclass(frozen=True)
class Impairment:
    """What one direction of the line does to packets. All zero: a clean wire."""

    loss_pct: float = 0.0
    burst: float = 1.0  #: mean length of a loss burst in packets; 1 is independent (random) loss
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder_pct: float = 0.0
    rate_kbit: float = 0.0  #: 0: no bandwidth limit
    media_only: bool = True  #: SIP passes untouched

    #: field -> (lowest, highest) accepted
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "loss_pct": (0.0, 100.0), "burst": (1.0, 1000.0), "delay_ms": (0.0, 5000.0), "jitter_ms": (0.0, 5000.0),
        "reorder_pct": (0.0, 100.0), "rate_kbit": (0.0, 1_000_000.0)}

    def problems(self) -> list[tuple[str, str]]:
        """(field, message) for every value out of range or combination that cannot work."""
        out = []
        for name, (low, high) in self.LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
                out.append((name, f"must be a number from {low:g} to {high:g}, got {value!r}"))
        if not isinstance(self.media_only, bool):
            out.append(("media_only", f"must be true or false, got {self.media_only!r}"))
        if not out:
            if self.reorder_pct > 0 and self.delay_ms <= 0:
                out.append(("reorder_pct", "needs delay_ms > 0: packets are reordered by sending some of them "
                                           "without the delay the others wait"))
            if 0 < self.rate_kbit < 8:
                out.append(("rate_kbit", "must be 0 (no limit) or at least 8 kbit/s"))
        return out

    @property
    def clean(self) -> bool:
        return not (self.loss_pct or self.delay_ms or self.jitter_ms or self.reorder_pct or self.rate_kbit)

    def describe(self) -> str:
        if self.clean:
            return "clean"
        parts = []
        if self.loss_pct:
            parts.append(f"loss {self.loss_pct:g}%" + (f" in bursts of {self.burst:g}" if self.burst > 1 else ""))
        if self.delay_ms or self.jitter_ms:
            parts.append(f"delay {self.delay_ms:g}" + (f"+-{self.jitter_ms:g}" if self.jitter_ms else "") + " ms")
        if self.reorder_pct:
            parts.append(f"reorder {self.reorder_pct:g}%")
        if self.rate_kbit:
            parts.append(f"rate {self.rate_kbit:g} kbit/s")
        return ", ".join(parts) + (" (media only)" if self.media_only else " (all traffic)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Impairment:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown impairment field(s): {', '.join(sorted(unknown))}")
        imp = cls(**data)
        bad = imp.problems()
        if bad:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in bad))
        return imp


class LossModel:
    """Gilbert-Elliott loss (netem ``loss gemodel p r 1-h 1-k``).

    Two states; the good one loses ``good_loss`` of its packets, the bad one ``bad_loss``. With the
    simple Gilbert form used by :class:`Impairment` (bad loses all, good none) the mean burst is
    ``1/r`` packets and the long-run loss ``p/(p+r)``, so ``p`` and ``r`` follow from loss and burst.
    A burst of 1 is plain independent loss.
    """

    def __init__(self, loss_pct: float, burst: float, rng: random.Random):
        self.rng = rng
        self.bad = False
        loss = loss_pct / 100.0
        self.independent = burst <= 1.0 or loss in (0.0, 1.0)
        self.loss = loss
        self.r = 1.0 / burst if burst > 0 else 1.0
        self.p = loss * self.r / (1.0 - loss) if loss < 1.0 else 1.0
        self.good_loss, self.bad_loss = 0.0, 1.0

    def lose(self) -> bool:
        if self.independent:
            return self.loss > 0 and self.rng.random() < self.loss
        # the state moves first, then decides this packet (netem's order)
        if self.bad:
            if self.rng.random() < self.r:
                self.bad = False
        elif self.rng.random() < self.p:
            self.bad = True
        return self.rng.random() < (self.bad_loss if self.bad else self.good_loss)


@dataclass
class Line:
    """One direction of the wire: decides when (or whether) each packet comes out."""

    rng: random.Random = field(default_factory=random.Random)
    impairment: Impairment = field(default_factory=Impairment)
    outage_until: float = 0.0
    outage_media_only: bool = True
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("packets", "sip", "delivered", "lost", "outage_lost", "queue_drops", "reordered"), 0))

    def __post_init__(self) -> None:
        self._loss = LossModel(self.impairment.loss_pct, self.impairment.burst, self.rng)
        self._last_release = 0.0  # keeps packets in order through jitter
        self._link_free = 0.0  # when the rate-limited link has sent everything queued

    def set(self, imp: Impairment, seed: int | None = None) -> None:
        if seed is not None:
            self.rng.seed(seed)
        self.impairment = imp
        self._loss = LossModel(imp.loss_pct, imp.burst, self.rng)

    def outage(self, seconds: float, media_only: bool, now: float) -> None:
        self.outage_until = now + seconds
        self.outage_media_only = media_only

    def admit(self, size: int, sip: bool, now: float) -> float | None:
        """The time the packet leaves the line, or None when the line loses it."""
        c = self.counters
        c["packets"] += 1
        c["sip"] += sip
        if now < self.outage_until and not (sip and self.outage_media_only):
            c["outage_lost"] += 1
            return None
        imp = self.impairment
        if imp.clean or (sip and imp.media_only):
            c["delivered"] += 1
            return now
        if self._loss.lose():
            c["lost"] += 1
            return None
        start = now
        if imp.rate_kbit:
            start = max(now, self._link_free)
            if start - now > QUEUE_LIMIT_S:
                c["queue_drops"] += 1
                return None
            self._link_free = start + size * 8.0 / (imp.rate_kbit * 1000.0)
            start = self._link_free
        if imp.reorder_pct and self.rng.random() * 100.0 < imp.reorder_pct:
            c["reordered"] += 1
            c["delivered"] += 1
            return start  # sent at once: it overtakes the packets waiting out their delay
        delay = imp.delay_ms + (self.rng.uniform(-imp.jitter_ms, imp.jitter_ms) if imp.jitter_ms else 0.0)
        release = max(start + max(0.0, delay) / 1000.0, self._last_release)
        self._last_release = release
        c["delivered"] += 1
        return release

    def state(self, now: float) -> dict[str, Any]:
        return {"impairment": self.impairment.to_dict(), "describe": self.impairment.describe(),
                "outage_left_s": round(max(0.0, self.outage_until - now), 3), "counters": dict(self.counters)}


def udp_ports(pkt: bytes) -> tuple[int, int] | None:
    """(source, destination) port of an IPv4 UDP packet's first fragment, else None."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] != 17:
        return None
    if struct.unpack_from("!H", pkt, 6)[0] & 0x1FFF:  # a later fragment carries no UDP header
        return None
    ihl = (pkt[0] & 0x0F) * 4
    if len(pkt) < ihl + 4:
        return None
    sport, dport = struct.unpack_from("!HH", pkt, ihl)
    return int(sport), int(dport)


def is_sip(pkt: bytes, sip_port: int) -> bool:
    ports = udp_ports(pkt)
    return ports is not None and sip_port in ports


class Forwarder:
    """The wire: two TUN descriptors, a line per direction, a control socket."""

    def __init__(self, root_fd: int, ns_fd: int, sip_port: int, control_path: str, seed: int | None = None):
        self.fds = {"to_lab": root_fd, "from_lab": ns_fd}
        self.out = {"to_lab": ns_fd, "from_lab": root_fd}
        self.sip_port = sip_port
        rng = random.Random(seed)
        self.lines = {d: Line(rng=random.Random(rng.random())) for d in DIRECTIONS}
        self.queue: list[tuple[float, int, int, bytes]] = []
        self.seq = 0
        self.stop = False
        for fd in self.fds.values():
            os.set_blocking(fd, False)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control_path)
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ctl.bind(control_path)
        self.ctl.setblocking(False)

    def run(self) -> None:
        by_fd = {fd: d for d, fd in self.fds.items()}
        ctl = self.ctl.fileno()
        while not self.stop:
            now = time.monotonic()
            wait = 0.5 if not self.queue else min(0.5, max(0.0, self.queue[0][0] - now))
            try:
                ready, _, _ = select.select([*by_fd, ctl], [], [], wait)
            except InterruptedError:
                continue
            now = time.monotonic()
            for r in ready:
                if r == ctl:
                    self._control()
                else:
                    self._read(by_fd[r], now)
            self._flush(time.monotonic())

    def _read(self, direction: str, now: float) -> None:
        fd, line = self.fds[direction], self.lines[direction]
        for _ in range(256):  # bounded per wake-up: the other direction gets its turn
            try:
                pkt = os.read(fd, 65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            release = line.admit(len(pkt), is_sip(pkt, self.sip_port), now)
            if release is not None:
                self.seq += 1
                heapq.heappush(self.queue, (release, self.seq, self.out[direction], pkt))

    def _flush(self, now: float) -> None:
        while self.queue and self.queue[0][0] <= now:
            _, _, fd, pkt = heapq.heappop(self.queue)
            with contextlib.suppress(OSError):  # a device going down with the lab
                os.write(fd, pkt)

    def _control(self) -> None:
        try:
            data, addr = self.ctl.recvfrom(65535)
        except OSError:
            return
        try:
            reply = self.handle(json.loads(data))
        except (ValueError, TypeError, KeyError) as exc:
            reply = {"ok": False, "error": str(exc)}
        if addr:
            with contextlib.suppress(OSError):
                self.ctl.sendto(json.dumps(reply).encode(), addr)

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        """One control command; raises ValueError on a bad one (the reply says why)."""
        cmd = msg.get("cmd")
        now = time.monotonic()
        directions = _directions(msg.get("direction", "both"))
        if cmd == "set":
            imp = Impairment.from_dict(dict(msg.get("impairment") or {}))
            for d in directions:
                self.lines[d].set(imp, msg.get("seed"))
            log(f"{'+'.join(directions)}: {imp.describe()}")
        elif cmd == "outage":
            seconds = float(msg["seconds"])
            if not 0 < seconds <= MAX_OUTAGE_S:
                raise ValueError(f"outage seconds must be in (0, {MAX_OUTAGE_S:g}]")
            for d in directions:
                self.lines[d].outage(seconds, bool(msg.get("media_only", True)), now)
            log(f"{'+'.join(directions)}: outage of {seconds:g} s"
                f"{' (media only)' if msg.get('media_only', True) else ''}")
        elif cmd == "clear":
            for d in DIRECTIONS:
                self.lines[d].set(Impairment())
                self.lines[d].outage_until = 0.0
            log("cleared")
        elif cmd != "status":
            raise ValueError(f"unknown command {cmd!r}")
        return {"ok": True, "lines": {d: self.lines[d].state(now) for d in DIRECTIONS}}


def _directions(value: Any) -> tuple[str, ...]:
    if value == "both":
        return DIRECTIONS
    if value in DIRECTIONS:
        return (value,)
    raise ValueError(f"direction must be both, to_lab or from_lab, got {value!r}")


class _Stopped(Exception):
    """SIGTERM or SIGINT arrived."""


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} netem: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.lab.netem", description=__doc__.splitlines()[0])
    ap.add_argument("--fds", required=True, help="ROOT_FD,NS_FD: the two TUN descriptors (inherited)")
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--control", required=True, help="UNIX datagram socket path for control commands")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    root_fd, ns_fd = (int(x) for x in args.fds.split(","))
    fwd = Forwarder(root_fd, ns_fd, args.sip_port, args.control, args.seed)

    def on_signal(_sig: int, _frame: Any) -> None:
        raise _Stopped  # out of select() at once: the lab waits for this process when it stops

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"forwarding (SIP port {args.sip_port} recognised for media-only impairments)")
    try:
        fwd.run()
    except _Stopped:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(args.control)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
