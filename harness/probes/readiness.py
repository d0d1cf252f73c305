"""Readiness probes of the lab: a SIP OPTIONS ping and an rtpengine ng ping, bounded in time and in packets.

Like every probe they send only inside a :class:`ProbeScope` (by default :meth:`ProbeScope.for_lab` of the
address pinged: loopback or the lab's namespace address) and within a :class:`PacketBudget`::

    rtt = sip_options_ping("127.0.0.1", 5060, timeout=0.3)   # seconds, or None: no answer
    rtt = ng_ping(lab_ip, ng_port, 0.3, scope=ProbeScope.for_lab(lab_ip))

A ping resends every 0.25 s while the server is silent, and every 0.05 s while the port refuses (ICMP
port unreachable: the daemon is not listening yet). Its default budget is what that pace allows within
the timeout; once the budget is spent the ping gives up (None) rather than send more.
"""

from __future__ import annotations

import math
import secrets
import socket
import time
from collections.abc import Callable

from harness.probes.scope import PacketBudget, ProbeScope

__all__ = ["ng_ping", "ping_budget", "sip_options_ping"]

_RESEND_S = 0.25  #: a silent server is asked again after this
_PAUSE_S = 0.05  #: after a refusal or a failed send, wait this long before the next packet


def ping_budget(timeout: float) -> PacketBudget:
    """The packets one ping may send within ``timeout``: at most one per pause, and one more."""
    return PacketBudget(max(1, math.ceil(timeout / _PAUSE_S)) + 1)


def _udp_roundtrip(host: str, port: int, build: Callable[[str, int], bytes], accept: Callable[[bytes], bool],
                   timeout: float, scope: ProbeScope | None, budget: PacketBudget | None) -> float | None:
    addr = (scope or ProbeScope.for_lab(host)).check(host)
    budget = budget or ping_budget(timeout)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((addr, port))
        except OSError:
            return None
        lhost, lport = s.getsockname()[:2]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or budget.left <= 0:
                return None
            t0 = time.monotonic()
            budget.spend()
            try:
                s.send(build(lhost, lport))
            except OSError:
                time.sleep(min(_PAUSE_S, max(remaining, 0)))
                continue
            s.settimeout(min(_RESEND_S, remaining))
            try:
                while True:
                    data = s.recv(65535)
                    if accept(data):
                        return time.monotonic() - t0
            except TimeoutError:
                continue
            except ConnectionRefusedError:  # nothing listens yet: ask again shortly, not in a tight loop
                time.sleep(min(_PAUSE_S, max(deadline - time.monotonic(), 0)))
            except OSError:
                time.sleep(_PAUSE_S)


def sip_options_ping(host: str, port: int, timeout: float = 2.0, *, scope: ProbeScope | None = None,
                     budget: PacketBudget | None = None) -> float | None:
    """Send OPTIONS until a SIP response arrives; returns the round trip in seconds, or None."""
    tag = secrets.token_hex(6)

    def build(lhost: str, lport: int) -> bytes:
        branch = "z9hG4bK" + secrets.token_hex(8)
        return (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {lhost}:{lport};branch={branch};rport\r\n"
                f"From: <sip:probe@{lhost}>;tag={tag}\r\nTo: <sip:{host}:{port}>\r\n"
                f"Call-ID: probe-{tag}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                f"User-Agent: harness-probe\r\nContent-Length: 0\r\n\r\n").encode()

    return _udp_roundtrip(host, port, build, lambda d: d.startswith(b"SIP/2.0 "), timeout, scope, budget)


def ng_ping(host: str, port: int, timeout: float = 2.0, *, scope: ProbeScope | None = None,
            budget: PacketBudget | None = None) -> float | None:
    """rtpengine control protocol ping (bencode over UDP); returns the round trip in seconds, or None."""
    cookie = secrets.token_hex(4).encode()
    return _udp_roundtrip(host, port, lambda _h, _p: cookie + b" d7:command4:pinge",
                          lambda d: d.startswith(cookie) and b"pong" in d, timeout, scope, budget)
