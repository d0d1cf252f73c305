"""Readiness probes: a SIP OPTIONS ping and an rtpengine ng ping, each bounded in time."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable

__all__ = ["ng_ping", "sip_options_ping"]


def _udp_roundtrip(host: str, port: int, build: Callable[[str, int], bytes], accept: Callable[[bytes], bool],
                   timeout: float) -> float | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, port))
        except OSError:
            return None
        lhost, lport = s.getsockname()[:2]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            t0 = time.monotonic()
            try:
                s.send(build(lhost, lport))
            except OSError:
                time.sleep(min(0.05, max(remaining, 0)))
                continue
            s.settimeout(min(0.25, remaining))
            try:
                while True:
                    data = s.recv(65535)
                    if accept(data):
                        return time.monotonic() - t0
            except (TimeoutError, ConnectionRefusedError):
                continue
            except OSError:
                time.sleep(0.05)


def sip_options_ping(host: str, port: int, timeout: float = 2.0) -> float | None:
    """Send OPTIONS until a SIP response arrives; returns the round trip in seconds, or None."""
    tag = secrets.token_hex(6)

    def build(lhost: str, lport: int) -> bytes:
        branch = "z9hG4bK" + secrets.token_hex(8)
        return (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {lhost}:{lport};branch={branch};rport\r\n"
                f"From: <sip:probe@{lhost}>;tag={tag}\r\nTo: <sip:{host}:{port}>\r\n"
                f"Call-ID: probe-{tag}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                f"User-Agent: harness-probe\r\nContent-Length: 0\r\n\r\n").encode()

    return _udp_roundtrip(host, port, build, lambda d: d.startswith(b"SIP/2.0 "), timeout)


def ng_ping(host: str, port: int, timeout: float = 2.0) -> float | None:
    """rtpengine control protocol ping (bencode over UDP); returns the round trip in seconds, or None."""
    cookie = secrets.token_hex(4).encode()
    return _udp_roundtrip(host, port, lambda _h, _p: cookie + b" d7:command4:pinge",
                          lambda d: d.startswith(cookie) and b"pong" in d, timeout)
