"""The lab's line (harness.lab.netem): the forwarder loop in a thread, driven through its control socket over
datagram socket pairs that stand in for the TUN devices (no namespace, no lab)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.contracts.errors import LabError
from harness.lab.netem import Forwarder, Impairment
from harness.lab.netns import LineControl

SIP_PORT = 46960


def udp_packet(sport: int, dport: int, payload: bytes = b"x" * 172, frag_offset: int = 0) -> bytes:
    """An IPv4/UDP packet as a TUN device hands it over (checksums are not looked at)."""
    total = 20 + 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, frag_offset, 64, 17, 0,
                     bytes([10, 233, 0, 1]), bytes([10, 233, 0, 2]))
    return ip + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


# ---- the forwarder, over socket pairs standing in for the TUN devices -----------------------------------
@pytest.fixture
def wire(tmp_path: Path) -> Iterator[tuple[socket.socket, socket.socket, LineControl]]:
    root_here, root_fwd = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns_here, ns_fwd = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    control = tmp_path / "netem.sock"
    fwd = Forwarder(root_fwd.fileno(), ns_fwd.fileno(), SIP_PORT, str(control), seed=9)
    t = threading.Thread(target=fwd.run, daemon=True)
    t.start()
    try:
        for s in (root_here, ns_here):
            s.settimeout(1.0)
        yield root_here, ns_here, LineControl(control, timeout=1.0)
    finally:
        fwd.stop = True
        t.join(2.0)
        for s in (root_here, root_fwd, ns_here, ns_fwd, fwd.ctl):
            s.close()
    assert not t.is_alive()


def test_forwarder_carries_both_ways_and_obeys_its_control(
        wire: tuple[socket.socket, socket.socket, LineControl]) -> None:
    root, ns, control = wire
    pkt = udp_packet(50000, 46962)
    root.send(pkt)
    assert ns.recv(65535) == pkt
    ns.send(pkt)
    assert root.recv(65535) == pkt

    reply = control.set(Impairment(loss_pct=100), direction="to_lab")
    assert reply["lines"]["to_lab"]["describe"] == "loss 100% (media only)"
    root.send(pkt)
    root.send(udp_packet(50000, SIP_PORT, b"OPTIONS"))  # SIP still passes
    assert ns.recv(65535).endswith(b"OPTIONS")
    ns.send(pkt)  # the other direction is untouched
    assert root.recv(65535) == pkt

    control.clear()
    control.outage(0.3, direction="from_lab")
    ns.send(pkt)
    root.settimeout(0.2)
    with pytest.raises(TimeoutError):
        root.recv(65535)
    status = control.status()["lines"]
    assert status["to_lab"]["counters"]["lost"] == 1 and status["from_lab"]["counters"]["outage_lost"] == 1


def test_forwarder_delays_by_the_set_amount(wire: tuple[socket.socket, socket.socket, LineControl]) -> None:
    import time

    root, ns, control = wire
    control.set(Impairment(delay_ms=120), direction="both")
    t0 = time.monotonic()
    root.send(udp_packet(50000, 46962))
    ns.recv(65535)
    assert 0.11 <= time.monotonic() - t0 <= 0.4


def test_control_refuses_bad_commands(wire: tuple[socket.socket, socket.socket, LineControl]) -> None:
    _, _, control = wire
    with pytest.raises(LabError, match="unknown command"):
        control.request({"cmd": "explode"})
    with pytest.raises(LabError, match="direction must be"):
        control.request({"cmd": "outage", "seconds": 1, "direction": "sideways"})
    with pytest.raises(LabError, match="loss_pct"):
        control.request({"cmd": "set", "impairment": {"loss_pct": 300}})
    with pytest.raises(LabError, match="outage seconds"):
        control.outage(0)


def test_control_without_a_line_fails_in_bounded_time(tmp_path: Path) -> None:
    control = LineControl(tmp_path / "nobody.sock", timeout=0.2)
    assert control.ping() is False
    with pytest.raises(LabError, match="did not answer"):
        control.status()
