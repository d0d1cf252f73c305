"""The lab's readiness pings (harness.probes.readiness) against loopback sockets: an answering SIP server
and an answering ng server, a silent one, and a port where nothing listens. No lab: they open sockets and
a thread, hence here and not in tests/unit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.contracts.errors import ProbeScopeError
from harness.probes.readiness import ng_ping, sip_options_ping
from harness.probes.scope import PacketBudget, ProbeScope


@pytest.fixture
def responder() -> Iterator[Callable[[Callable[[bytes], bytes | None]], int]]:
    """A UDP server on 127.0.0.1 in a thread that answers each datagram with ``answer(data)`` (None: silence)."""
    stop = threading.Event()
    started: list[tuple[socket.socket, threading.Thread]] = []

    def start(answer: Callable[[bytes], bytes | None]) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.05)

        def loop() -> None:
            while not stop.is_set():
                try:
                    data, peer = sock.recvfrom(65535)
                except OSError:
                    continue
                reply = answer(data)
                if reply is not None:
                    sock.sendto(reply, peer)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        started.append((sock, t))
        return int(sock.getsockname()[1])

    yield start
    stop.set()
    for sock, t in started:
        t.join(2)
        sock.close()


def test_options_ping_measures_the_round_trip(responder: Callable[..., int]) -> None:
    seen: list[bytes] = []

    def sip(data: bytes) -> bytes:
        seen.append(data)
        return b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"

    port = responder(sip)
    rtt = sip_options_ping("127.0.0.1", port, 1.0)
    assert rtt is not None and 0 <= rtt < 1.0
    assert seen[0].startswith(f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n".encode())


def test_ng_ping_wants_its_cookie_back(responder: Callable[..., int]) -> None:
    port = responder(lambda d: d.split(b" ", 1)[0] + b" d6:result4:ponge")
    assert ng_ping("127.0.0.1", port, 1.0) is not None
    other = responder(lambda d: b"deadbeef d6:result4:ponge")  # someone else's answer
    assert ng_ping("127.0.0.1", other, 0.4) is None


def test_a_silent_server_is_asked_at_a_slow_pace(responder: Callable[..., int]) -> None:
    port = responder(lambda d: None)
    budget = PacketBudget(100)
    t0 = time.monotonic()
    assert sip_options_ping("127.0.0.1", port, 0.6, budget=budget) is None
    assert 0.55 <= time.monotonic() - t0 < 1.0
    assert 2 <= budget.sent <= 4  # one every 0.25 s


def test_a_refusing_port_is_not_flooded_and_the_budget_stops_the_ping() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: ICMP port unreachable answers each packet
    budget = PacketBudget(1000)
    assert sip_options_ping("127.0.0.1", port, 0.5, budget=budget) is None
    assert budget.sent <= 12  # one every 0.05 s, not a tight loop
    small = PacketBudget(3)
    t0 = time.monotonic()
    assert ng_ping("127.0.0.1", port, 5.0, budget=small) is None
    assert small.sent == 3 and time.monotonic() - t0 < 1.0  # spent: it gives up before its timeout


def test_a_ping_stays_in_its_scope() -> None:
    with pytest.raises(ProbeScopeError):
        sip_options_ping("192.0.2.1", 5060, 0.2, scope=ProbeScope.for_lab("127.0.0.1"))
    with pytest.raises(ProbeScopeError):
        ng_ping("8.8.8.8", 2223, 0.2)  # by default the scope is the lab at the address given: refused
