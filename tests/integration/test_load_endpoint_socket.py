"""The load engine's socket: datagrams carry the kernel's arrival time, so a response that waited in
the socket while the engine was busy is measured when it arrived, not when it was read.
These tests open real UDP sockets (moved from tests/unit/test_load_endpoint.py)."""

from __future__ import annotations

import socket
import time

from harness.load.endpoint import Endpoint


def test_a_datagram_read_late_keeps_its_arrival_time() -> None:
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    got: list[tuple[bytes, float]] = []

    def deliver(key: bytes, item: tuple[float, bytes]) -> bool:
        got.append((key, item[0]))
        return True

    ep = Endpoint(far.getsockname(), deliver)
    try:
        msg = b"SIP/2.0 200 OK\r\nCall-ID: abc@h\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        # Linux turns receive stamping on for the whole host lazily (a deferred static key) when the
        # first socket asks for it: until then a datagram is stamped when read. A load run starts
        # sending long after its socket exists; here, give the kernel that moment.
        time.sleep(0.05)
        far.sendto(msg, ("127.0.0.1", ep.port))
        time.sleep(0.01)
        assert ep.drain() == 1
        got.clear()
        sent = time.perf_counter()
        far.sendto(msg, ("127.0.0.1", ep.port))
        time.sleep(0.08)  # the engine is busy elsewhere
        assert ep.drain() == 1
        read = time.perf_counter()
        (key, t_rx), = got
        assert key == b"abc@h"
        assert sent - 0.005 <= t_rx <= sent + 0.03, (t_rx - sent, read - sent)  # when it arrived ...
        assert read - t_rx >= 0.05  # ... not when it was read
        assert ep.drain() == 0
    finally:
        ep.sock.close()
        far.close()


def test_datagrams_from_anyone_but_the_target_are_not_read() -> None:
    far, stranger = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    far.bind(("127.0.0.1", 0))
    stranger.bind(("127.0.0.1", 0))
    got: list[bytes] = []

    def deliver(key: bytes, _item: tuple[float, bytes]) -> bool:
        got.append(key)
        return True

    ep = Endpoint(far.getsockname(), deliver)
    try:
        stranger.sendto(b"SIP/2.0 200 OK\r\nCall-ID: x@h\r\n\r\n", ("127.0.0.1", ep.port))
        time.sleep(0.02)
        assert ep.drain() == 0 and got == []
    finally:
        ep.sock.close()
        far.close()
        stranger.close()
