"""The lab's line (harness.lab.netem): the impairment model with a seeded random source and packet
classification. The forwarder loop, over socket pairs and a thread, is in
tests/integration/test_netem_forwarder.py."""

from __future__ import annotations

import itertools
import random
import struct

import pytest

from harness.lab.netem import Impairment, Line, LossModel, is_sip, udp_ports

SIP_PORT = 46960


def udp_packet(sport: int, dport: int, payload: bytes = b"x" * 172, frag_offset: int = 0) -> bytes:
    """An IPv4/UDP packet as a TUN device hands it over (checksums are not looked at)."""
    total = 20 + 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, frag_offset, 64, 17, 0,
                     bytes([10, 233, 0, 1]), bytes([10, 233, 0, 2]))
    return ip + struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


# ---- the impairment spec -------------------------------------------------------------------------------
def test_impairment_problems_name_the_field() -> None:
    assert Impairment(loss_pct=5).problems() == []
    assert [k for k, _ in Impairment(loss_pct=120).problems()] == ["loss_pct"]
    assert [k for k, _ in Impairment(burst=0.5).problems()] == ["burst"]
    assert [k for k, _ in Impairment(reorder_pct=10).problems()] == ["reorder_pct"]  # reorder needs a delay
    assert [k for k, _ in Impairment(rate_kbit=4).problems()] == ["rate_kbit"]
    with pytest.raises(ValueError, match="unknown impairment field"):
        Impairment.from_dict({"los_pct": 5})
    with pytest.raises(ValueError, match="loss_pct"):
        Impairment.from_dict({"loss_pct": -1})


def test_impairment_describes_itself() -> None:
    assert Impairment().describe() == "clean"
    text = Impairment(loss_pct=5, burst=4, delay_ms=40, jitter_ms=10, rate_kbit=64).describe()
    assert text == "loss 5% in bursts of 4, delay 40+-10 ms, rate 64 kbit/s (media only)"
    assert Impairment.from_dict(Impairment(loss_pct=2, media_only=False).to_dict()) == Impairment(
        loss_pct=2, media_only=False)


# ---- loss models ---------------------------------------------------------------------------------------
def bursts(lost: list[bool]) -> list[int]:
    out, run = [], 0
    for x in lost:
        if x:
            run += 1
        elif run:
            out.append(run)
            run = 0
    return out + ([run] if run else [])


def test_random_loss_rate_and_no_bursts() -> None:
    m = LossModel(5.0, 1.0, random.Random(1))
    lost = [m.lose() for _ in range(40000)]
    assert sum(lost) / len(lost) == pytest.approx(0.05, abs=0.004)
    assert sum(bursts(lost)) / len(bursts(lost)) < 1.2  # independent: runs of about one packet


def test_gilbert_elliott_keeps_the_rate_and_makes_bursts() -> None:
    m = LossModel(5.0, 4.0, random.Random(2))
    lost = [m.lose() for _ in range(80000)]
    assert sum(lost) / len(lost) == pytest.approx(0.05, abs=0.008)
    runs = bursts(lost)
    assert sum(runs) / len(runs) == pytest.approx(4.0, rel=0.15)


def test_no_loss_and_total_loss() -> None:
    assert not any(LossModel(0.0, 3.0, random.Random(3)).lose() for _ in range(1000))
    assert all(LossModel(100.0, 3.0, random.Random(3)).lose() for _ in range(1000))


# ---- one direction of the line -------------------------------------------------------------------------
def test_clean_line_passes_everything_at_once() -> None:
    line = Line(rng=random.Random(4))
    assert [line.admit(200, False, t) for t in (1.0, 1.02)] == [1.0, 1.02]
    assert line.counters["delivered"] == 2


def test_delay_and_jitter_keep_order() -> None:
    line = Line(rng=random.Random(5))
    line.set(Impairment(delay_ms=50, jitter_ms=30))
    times = [line.admit(200, False, i * 0.02) for i in range(500)]
    assert all(t is not None for t in times)
    released = [t for t in times if t is not None]
    assert released == sorted(released), "jitter without reorder_pct keeps the order"
    waits = [t - i * 0.02 for i, t in enumerate(released)]
    assert min(waits) >= 0.020 - 1e-9 and max(waits) <= 0.080 + 0.02
    assert sum(waits) / len(waits) == pytest.approx(0.055, abs=0.01)


def test_reorder_sends_a_share_at_once() -> None:
    line = Line(rng=random.Random(6))
    line.set(Impairment(delay_ms=40, reorder_pct=25))
    times = [line.admit(200, False, i * 0.02) for i in range(2000)]
    at_once = sum(1 for i, t in enumerate(times) if t == pytest.approx(i * 0.02))
    assert at_once / 2000 == pytest.approx(0.25, abs=0.03)
    assert line.counters["reordered"] == at_once
    order = sorted(range(len(times)), key=lambda i: times[i] or 0.0)
    assert order != list(range(len(times))), "some packets overtake others"


def test_rate_limit_serialises_and_tail_drops() -> None:
    line = Line(rng=random.Random(7))
    line.set(Impairment(rate_kbit=64))
    # 200-byte packets at 100/s = 160 kbit/s into 64 kbit/s: each takes 25 ms on the wire
    times = [line.admit(200, False, i * 0.01) for i in range(300)]
    sent = [t for t in times if t is not None]
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) == pytest.approx(0.025, abs=1e-6)
    assert line.counters["queue_drops"] > 100  # what does not fit in 500 ms of queue is dropped
    assert max(t - i * 0.01 for i, t in enumerate(times) if t is not None) <= 0.5 + 0.025 + 1e-9


def test_media_only_spares_sip_and_outage_cuts_for_its_time() -> None:
    line = Line(rng=random.Random(8))
    line.set(Impairment(loss_pct=100))
    assert line.admit(500, True, 0.0) == 0.0  # SIP passes a media-only impairment
    assert line.admit(200, False, 0.0) is None
    line.set(Impairment())
    line.outage(2.0, media_only=True, now=10.0)
    assert line.admit(200, False, 11.0) is None and line.admit(500, True, 11.0) == 11.0
    assert line.admit(200, False, 12.5) == 12.5  # over: the line is what it was before
    line.outage(1.0, media_only=False, now=20.0)
    assert line.admit(500, True, 20.5) is None
    assert line.counters["outage_lost"] == 2


def test_packet_classification() -> None:
    assert udp_ports(udp_packet(5060, SIP_PORT)) == (5060, SIP_PORT)
    assert is_sip(udp_packet(50000, SIP_PORT), SIP_PORT) and is_sip(udp_packet(SIP_PORT, 1234), SIP_PORT)
    assert not is_sip(udp_packet(50000, 46962), SIP_PORT)
    assert udp_ports(udp_packet(1, 2, frag_offset=185)) is None  # a later fragment has no UDP header
    assert udp_ports(b"\x60" + b"\0" * 60) is None  # IPv6
    assert udp_ports(b"\x45\0") is None
