"""rtpengine pcap recordings -> WAVs, on pcaps synthesised here byte by byte (Ethernet/IP/UDP/RTP)."""

from __future__ import annotations

import os
import socket
import struct
import wave
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from harness.audio.codecs import alaw_encode, ulaw_decode, ulaw_encode
from harness.lab.pcap import read_capture
from harness.lab.recording import (
    RecordingError,
    call_id_from_path,
    direction_audio,
    find_recordings,
    metadata_path_for,
    read_metadata,
    read_recording,
    recording_to_wavs,
)

RATE = 8000
FRAME = 160  # 20 ms of G.711
T0 = 1_700_000_000.25
CALLER, CALLEE = ("127.0.0.1", 45010), ("127.0.0.1", 45020)
RE_FOR_CALLER, RE_FOR_CALLEE = ("127.0.0.1", 45300), ("127.0.0.1", 45302)  # rtpengine's ports
PT_NUM = {"PCMU": 0, "PCMA": 8}


# ------------------------------------------------------------------------------ synthesis helpers


def tone(freq: float, n: int, amp: float = 8000.0) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / RATE)


@dataclass
class Pkt:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    data: bytes


def rtp(
    ssrc: int,
    seq: int,
    ts: int,
    payload: bytes,
    pt: int = 0,
    marker: bool = False,
    csrc: tuple[int, ...] = (),
    ext_words: int = 0,
    padding: int = 0,
) -> bytes:
    b0 = 0x80 | len(csrc) | (0x10 if ext_words else 0) | (0x20 if padding else 0)
    head = struct.pack("!BBHII", b0, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    head += b"".join(struct.pack("!I", c) for c in csrc)
    if ext_words:
        head += struct.pack("!HH", 0xBEDE, ext_words) + b"\xaa" * (4 * ext_words)
    pad = (b"\x00" * (padding - 1) + bytes([padding])) if padding else b""
    return head + payload + pad


def stream(
    ssrc: int,
    src: tuple[str, int],
    dst: tuple[str, int],
    signal: np.ndarray,
    start: float,
    codec: str = "PCMU",
    seq0: int = 1000,
    ts0: int = 50_000,
    **rtp_kw: Any,
) -> list[Pkt]:
    """One RTP stream, a packet every 20 ms, carrying ``signal`` encoded with ``codec``."""
    payload = (ulaw_encode if codec == "PCMU" else alaw_encode)(signal).tobytes()
    out = []
    for i in range(len(payload) // FRAME):
        data = rtp(
            ssrc, seq0 + i, ts0 + i * FRAME, payload[i * FRAME : (i + 1) * FRAME], PT_NUM[codec], **rtp_kw
        )
        out.append(Pkt(start + i * 0.02, src, dst, data))
    return out


def _ip_bytes(addr: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


def ip_udp(p: Pkt) -> bytes:
    udp = struct.pack("!HHHH", p.src[1], p.dst[1], 8 + len(p.data), 0) + p.data
    if ":" in p.src[0]:
        return (
            struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + _ip_bytes(p.src[0]) + _ip_bytes(p.dst[0]) + udp
        )
    return (
        struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0)
        + _ip_bytes(p.src[0])
        + _ip_bytes(p.dst[0])
        + udp
    )


def frame(p: Pkt, link: int, vlan: bool = False) -> bytes:
    ip = ip_udp(p)
    etype = 0x86DD if ":" in p.src[0] else 0x0800
    if link == 1:
        tag = struct.pack("!HH", 0x8100, 42) if vlan else b""
        return (
            b"\x02" * 6 + b"\x04" * 6 + tag + struct.pack("!H", etype) + ip + (b"\x00" * 4 if vlan else b"")
        )
    if link in (101, 228, 229):
        return ip
    if link == 113:
        return struct.pack("!HHH", 0, 1, 6) + b"\x02" * 8 + struct.pack("!H", etype) + ip
    if link == 276:
        return struct.pack("!HHIHBB", etype, 0, 1, 1, 0, 6) + b"\x02" * 8 + ip
    if link == 0:
        return struct.pack("<I", 2 if etype == 0x0800 else 30) + ip
    raise ValueError(link)


def pcap_bytes(
    pkts: list[Pkt], link: int = 1, endian: str = "<", nano: bool = False, vlan: bool = False
) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, link)]
    for p in sorted(pkts, key=lambda p: p.time):
        f = frame(p, link, vlan)
        sec = int(p.time)
        sub = round((p.time - sec) * (1e9 if nano else 1e6))
        out.append(struct.pack(endian + "IIII", sec, sub, len(f), len(f)) + f)
    return b"".join(out)


def _block(endian: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def pcapng_bytes(pkts: list[Pkt], link: int = 1, endian: str = "<", tsresol: int = 6) -> bytes:
    shb = _block(endian, 0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack(endian + "HHB3x", 9, 1, tsresol) + struct.pack(endian + "HH", 0, 0)
    idb = _block(endian, 1, struct.pack(endian + "HHI", link, 0, 65535) + opts)
    out = [shb, idb, _block(endian, 4, b"")]  # plus a name-resolution block that must be skipped
    for p in sorted(pkts, key=lambda p: p.time):
        f = frame(p, link)
        ts = round(p.time * 10**tsresol)
        out.append(
            _block(endian, 6, struct.pack(endian + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
        )
    return b"".join(out)


def write(tmp_path: Path, data: bytes, name: str = "call.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def read_wav(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        ch, rate, width = w.getnchannels(), w.getframerate(), w.getsampwidth()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert width == 2
    return ch, rate, x.reshape(-1, ch) if ch > 1 else x


def corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(np.asarray(a[:n], float), np.asarray(b[:n], float))[0, 1])


def dominant_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(np.asarray(x, float) * np.hanning(len(x))))
    return float(np.argmax(spec) * RATE / len(x))


SECONDS = 2.0
N = int(SECONDS * RATE)
SIG_A, SIG_B = tone(440, N), tone(1000, N)


def rtpengine_call(b_delay: float = 0.3) -> list[Pkt]:
    """What rtpengine 10.5 records: the two ingress streams only."""
    return stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0) + stream(
        0x2222, CALLEE, RE_FOR_CALLEE, SIG_B, T0 + b_delay, codec="PCMA", seq0=60_000, ts0=7
    )


def relay_call(b_delay: float = 0.3, lag: float = 0.0004) -> list[Pkt]:
    """Both legs of both directions, as a capture on the relay host sees them (SSRC/seq/ts relayed)."""
    out = rtpengine_call(b_delay)
    out += stream(0x1111, RE_FOR_CALLEE, CALLEE, SIG_A, T0 + lag)
    out += stream(0x2222, RE_FOR_CALLER, CALLER, SIG_B, T0 + b_delay + lag, codec="PCMA", seq0=60_000, ts0=7)
    return out


# ------------------------------------------------------------------------------ directions and legs


def test_rtpengine_two_ingress_streams(tmp_path: Path) -> None:
    wavs = recording_to_wavs(write(tmp_path, pcap_bytes(rtpengine_call())), tmp_path / "out", stem="c")
    assert [wavs.dir1.name, wavs.dir2.name, wavs.mix.name] == ["c_dir1.wav", "c_dir2.wav", "c_mix.wav"]
    d1, d2 = wavs.directions
    assert (d1.src, d1.dst, d1.codec) == (CALLER, RE_FOR_CALLER, "PCMU")
    assert (d2.src, d2.dst, d2.codec) == (CALLEE, RE_FOR_CALLEE, "PCMA")
    assert wavs.sample_rate == 8000 and wavs.call_id is None
    assert wavs.durations == (SECONDS, SECONDS)
    ch, rate, x1 = read_wav(wavs.dir1)
    assert (ch, rate) == (1, 8000)
    assert corr(x1, SIG_A) > 0.99 and dominant_hz(x1) == pytest.approx(440, abs=2)
    _, _, x2 = read_wav(wavs.dir2)
    assert corr(x2, SIG_B) > 0.99 and dominant_hz(x2) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize("lag", [0.0004, 0.0])  # 0: same capture time (one event-loop pass): file order
def test_two_directions_two_legs_pick_ingress(tmp_path: Path, lag: float) -> None:
    pcap = write(tmp_path, pcap_bytes(relay_call(lag=lag)))
    rec = read_recording(pcap)
    assert len(rec.streams) == 4 and len(rec.directions) == 2 and not rec.other_directions
    d1, d2 = rec.directions
    assert (d1.src, d1.dst) == (CALLER, RE_FOR_CALLER)  # ingress leg, not the relayed copy
    assert (d2.src, d2.dst) == (CALLEE, RE_FOR_CALLEE)
    assert [(s.src, s.dst) for s in d1.copies] == [(RE_FOR_CALLEE, CALLEE)]
    assert d1.legs == d2.legs == 2

    wavs = recording_to_wavs(pcap, tmp_path)
    assert wavs.dir1.name == "call_dir1.wav"
    assert corr(read_wav(wavs.dir1)[2], SIG_A) > 0.99
    assert corr(read_wav(wavs.dir2)[2], SIG_B) > 0.99
    # the mix is aligned on capture time: the callee's audio starts 0.3 s in, on the right channel
    ch, _, mix = read_wav(wavs.mix)
    assert ch == 2 and wavs.directions[1].start_s == pytest.approx(0.3, abs=1 / RATE)
    off = round(0.3 * RATE)
    assert not mix[:off, 1].any()
    assert corr(mix[off : off + N, 1], SIG_B) > 0.99
    assert corr(mix[:N, 0], SIG_A) > 0.99
    assert wavs.mix_duration_s == pytest.approx(SECONDS + 0.3, abs=1 / RATE)


def test_extra_stream_is_reported_not_chosen(tmp_path: Path) -> None:
    stray = stream(0x9999, ("127.0.0.1", 45900), ("127.0.0.1", 45902), tone(300, 10 * FRAME), T0 + 1)
    rec = read_recording(write(tmp_path, pcap_bytes(relay_call() + stray)))
    assert [d.src for d in rec.directions] == [CALLER, CALLEE]
    assert [d.ssrcs for d in rec.other_directions] == [[0x9999]]
    assert any("extra direction not used" in w and "45900" in w for w in rec.warnings)


def test_dir1_is_the_direction_that_started_first(tmp_path: Path) -> None:
    rec = read_recording(write(tmp_path, pcap_bytes(rtpengine_call(b_delay=-0.5))))
    assert rec.directions[0].src == CALLEE and rec.directions[0].role is None


def test_one_way_audio_gives_silent_dir2(tmp_path: Path) -> None:
    pcap = write(tmp_path, pcap_bytes(stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0)))
    wavs = recording_to_wavs(pcap, tmp_path)
    assert wavs.directions[1].present is False and wavs.directions[0].present is True
    assert any("one direction only" in w for w in wavs.warnings)
    _, _, x2 = read_wav(wavs.dir2)
    assert len(x2) == N and not x2.any()


def test_echo_reflector_with_same_ssrc_is_still_two_directions(tmp_path: Path) -> None:
    echo = [
        replace(p, time=p.time + 0.05, src=CALLEE, dst=RE_FOR_CALLEE)
        for p in stream(7, CALLER, RE_FOR_CALLER, SIG_A, T0)
    ]
    rec = read_recording(write(tmp_path, pcap_bytes(stream(7, CALLER, RE_FOR_CALLER, SIG_A, T0) + echo)))
    assert [d.src for d in rec.directions] == [CALLER, CALLEE]


# ------------------------------------------------------------------------- loss, order, DTMF, RTCP


def test_packet_loss_leaves_silence_in_place(tmp_path: Path) -> None:
    pkts = [p for i, p in enumerate(stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0)) if not 20 <= i < 25]
    rec = read_recording(write(tmp_path, pcap_bytes(pkts + stream(0x2222, CALLEE, RE_FOR_CALLEE, SIG_B, T0))))
    assert rec.directions[0].lost == 5 and rec.directions[1].lost == 0
    t0, x = direction_audio(rec.directions[0])
    assert t0 == pytest.approx(T0, abs=1e-6) and len(x) == N
    assert not x[20 * FRAME : 25 * FRAME].any()
    assert corr(x[: 20 * FRAME], SIG_A) > 0.99
    assert corr(x[25 * FRAME :], SIG_A[25 * FRAME :]) > 0.99


def test_reordering_and_duplicates(tmp_path: Path) -> None:
    pkts = stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0)
    for i in (10, 30, 31, 70):  # delayed past their successor
        pkts[i] = replace(pkts[i], time=pkts[i + 1].time + 0.004)
    pkts.append(replace(pkts[40], time=pkts[40].time + 0.005))
    pkts.append(replace(pkts[41], time=pkts[41].time + 0.5))  # a late duplicate
    rec = read_recording(write(tmp_path, pcap_bytes(pkts)))
    s = rec.streams[0]
    assert (s.packets, s.duplicates, s.lost) == (102, 2, 0)
    t0, x = direction_audio(rec.directions[0])
    assert t0 == pytest.approx(T0, abs=1e-6)
    assert np.array_equal(x, ulaw_decode(ulaw_encode(SIG_A)))


def test_telephone_event_is_not_audio(tmp_path: Path) -> None:
    pkts = stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0)
    for k, i in enumerate(range(50, 55)):  # DTMF '5' replaces 100 ms of audio (RFC 4733 shares seq)
        event = struct.pack("!BBH", 5, 10 | (0x80 if k == 4 else 0), (k + 1) * FRAME)
        pkts[i] = replace(
            pkts[i], data=rtp(0x1111, 1000 + i, 50_000 + 50 * FRAME, event, pt=101, marker=k == 0)
        )
    rec = read_recording(write(tmp_path, pcap_bytes(pkts)))
    assert len(rec.streams) == 1
    s = rec.streams[0]
    assert s.payload_types == {0: 95, 101: 5} and s.audio_packets == 95 and s.lost == 0 and s.codec == "PCMU"
    assert any("PT101" in w for w in rec.warnings)
    _, x = direction_audio(rec.directions[0])
    assert not x[50 * FRAME : 55 * FRAME].any()
    assert corr(x[: 50 * FRAME], SIG_A) > 0.99 and corr(x[55 * FRAME :], SIG_A[55 * FRAME :]) > 0.99


def test_rtcp_is_ignored(tmp_path: Path) -> None:
    pkts = rtpengine_call()
    rtcp_port = (RE_FOR_CALLER[0], RE_FOR_CALLER[1] + 1)
    for k in range(4):
        sr = struct.pack("!BBHI", 0x80, 200, 6, 0x1111) + bytes(20)
        rr = struct.pack("!BBHI", 0x81, 201, 7, 0x2222) + bytes(24)
        pkts.append(Pkt(T0 + 0.5 * k + 0.001, (CALLER[0], CALLER[1] + 1), rtcp_port, sr))
        pkts.append(Pkt(T0 + 0.5 * k + 0.002, CALLEE, RE_FOR_CALLEE, rr + sr))  # rtcp-mux, compound
    rec = read_recording(write(tmp_path, pcap_bytes(pkts)))
    assert len(rec.streams) == 2 and rec.streams[0].packets == 100 and rec.streams[1].packets == 100
    assert not rec.warnings


def test_csrc_header_extension_and_padding(tmp_path: Path) -> None:
    pkts = stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0, csrc=(1, 2), ext_words=2, padding=4)
    _, x = direction_audio(read_recording(write(tmp_path, pcap_bytes(pkts))).directions[0])
    assert np.array_equal(x, ulaw_decode(ulaw_encode(SIG_A)))


def test_sequence_and_timestamp_wrap(tmp_path: Path) -> None:
    pkts = stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0, seq0=65_500, ts0=2**32 - 30 * FRAME)
    rec = read_recording(write(tmp_path, pcap_bytes(pkts)))
    assert rec.streams[0].lost == 0 and rec.streams[0].duration_s == SECONDS
    _, x = direction_audio(rec.directions[0])
    assert np.array_equal(x, ulaw_decode(ulaw_encode(SIG_A)))


def test_timestamp_jump_is_placed_by_capture_time(tmp_path: Path) -> None:
    pkts = stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A, T0)
    for i in range(50, len(pkts)):  # the sender's RTP clock leaps 10 minutes; the wall clock does not
        data = bytearray(pkts[i].data)
        data[4:8] = struct.pack("!I", 50_000 + i * FRAME + 600 * RATE)
        pkts[i] = replace(pkts[i], data=bytes(data))
    rec = read_recording(write(tmp_path, pcap_bytes(pkts)))
    assert rec.streams[0].duration_s == pytest.approx(SECONDS, abs=0.001)
    _, x = direction_audio(rec.directions[0])
    assert len(x) == N and corr(x, SIG_A) > 0.99


def test_ssrc_change_continues_the_direction(tmp_path: Path) -> None:
    first = stream(0x1111, CALLER, RE_FOR_CALLER, SIG_A[: N // 2], T0)
    second = stream(0x3333, CALLER, RE_FOR_CALLER, SIG_A[N // 2 :], T0 + SECONDS / 2, seq0=9, ts0=123_456_789)
    pkts = first + second + stream(0x2222, CALLEE, RE_FOR_CALLEE, SIG_B, T0 + 0.1)
    rec = read_recording(write(tmp_path, pcap_bytes(pkts)))
    assert len(rec.streams) == 3 and len(rec.directions) == 2 and not rec.other_directions
    d1 = rec.directions[0]
    assert d1.ssrcs == [0x1111, 0x3333]
    _, x = direction_audio(d1)
    assert len(x) == N and corr(x, SIG_A) > 0.99


# ------------------------------------------------------------------------------- files and formats


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_nanoseconds(tmp_path: Path, endian: str, nano: bool) -> None:
    rec = read_recording(write(tmp_path, pcap_bytes(relay_call(), endian=endian, nano=nano)))
    assert rec.directions[0].first_time == pytest.approx(T0, abs=1e-6)
    _, x = direction_audio(rec.directions[1])
    assert corr(x, SIG_B) > 0.99


@pytest.mark.parametrize(
    ("link", "vlan", "ipv6"),
    [(1, True, False), (1, False, True), (101, False, False), (101, False, True), (228, False, False),
     (229, False, True), (113, False, False), (276, False, True), (0, False, False)],
)  # fmt: skip
def test_link_types(tmp_path: Path, link: int, vlan: bool, ipv6: bool) -> None:
    pkts = rtpengine_call()
    if ipv6:
        v6 = {
            CALLER: ("::1", 45010),
            CALLEE: ("fd00::2", 45020),
            RE_FOR_CALLER: ("::1", 45300),
            RE_FOR_CALLEE: ("::1", 45302),
        }
        pkts = [replace(p, src=v6[p.src], dst=v6[p.dst]) for p in pkts]
    rec = read_recording(write(tmp_path, pcap_bytes(pkts, link=link, vlan=vlan)))
    assert len(rec.directions) == 2
    if ipv6:
        assert rec.directions[1].src == ("fd00::2", 45020)
    assert corr(direction_audio(rec.directions[0])[1], SIG_A) > 0.99


@pytest.mark.parametrize(("endian", "tsresol"), [("<", 6), (">", 9)])
def test_pcapng(tmp_path: Path, endian: str, tsresol: int) -> None:
    rec = read_recording(
        write(tmp_path, pcapng_bytes(relay_call(), endian=endian, tsresol=tsresol), "c.pcapng")
    )
    assert len(rec.streams) == 4 and rec.directions[0].first_time == pytest.approx(T0, abs=1e-6)
    assert corr(direction_audio(rec.directions[0])[1], SIG_A) > 0.99


@pytest.mark.parametrize("cut", [50, 1000, 8])  # inside the last packet, further back, in a record header
def test_truncated_pcap_keeps_what_was_read(tmp_path: Path, cut: int) -> None:
    full = pcap_bytes(rtpengine_call())
    whole = read_capture(write(tmp_path, full, "full.pcap"))
    pcap = write(tmp_path, full[:-cut])
    rec = read_recording(pcap)
    assert rec.truncated and "cut short" in rec.truncated
    assert any("truncated" in w and "call.pcap" in w for w in rec.warnings)
    kept = sum(s.packets for s in rec.streams)
    assert whole.frames - 5 <= kept < whole.frames
    wavs = recording_to_wavs(pcap, tmp_path)
    assert wavs.truncated and corr(read_wav(wavs.dir1)[2], SIG_A) > 0.99
    with pytest.raises(RecordingError, match=r"call\.pcap: truncated"):
        read_recording(pcap, strict=True)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"this is not a capture at all\n", "not a pcap/pcapng capture"),
        (b"", "empty file"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "header cut short"),
    ],
)
def test_not_a_pcap(tmp_path: Path, content: bytes, match: str) -> None:
    with pytest.raises(RecordingError, match=match) as info:
        read_recording(write(tmp_path, content, "notes.pcap"))
    assert "notes.pcap" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"missing\.pcap: cannot read"):
        read_recording(tmp_path / "missing.pcap")


def test_no_rtp(tmp_path: Path) -> None:
    sip = Pkt(T0, ("127.0.0.1", 5060), ("127.0.0.1", 5062), b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n")
    with pytest.raises(RecordingError, match=r"sip\.pcap: no RTP packets in 1 frames"):
        read_recording(write(tmp_path, pcap_bytes([sip]), "sip.pcap"))
    with pytest.raises(RecordingError, match="no RTP packets in 0 frames"):
        read_recording(write(tmp_path, pcap_bytes([]), "empty.pcap"))


def test_unsupported_codec(tmp_path: Path) -> None:
    pkts = [
        Pkt(T0 + i * 0.02, CALLER, RE_FOR_CALLER, rtp(5, i, i * 160, b"\x11" * 160, pt=9)) for i in range(10)
    ]
    with pytest.raises(RecordingError, match=r"g722\.pcap: unsupported codec: .*9 \(G722\)"):
        read_recording(write(tmp_path, pcap_bytes(pkts), "g722.pcap"))


def test_unsupported_link_type(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(rtpengine_call()))
    data[20:24] = struct.pack("<I", 147)
    with pytest.raises(RecordingError, match="unsupported pcap link type 147"):
        read_recording(write(tmp_path, bytes(data)))


# ------------------------------------------------------------------------ rtpengine spool layout


def _sdp(port: int, sess: int) -> str:
    return (
        f"v=0\r\no=- {sess} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\na=rtcp:{port + 1}\r\n"
    )


def spool(
    tmp_path: Path,
    call_id: str,
    pkts: list[Pkt],
    tag: str = "b87cd9ef52be5af4",
    meta: bool = True,
    advertised: str = "127.0.0.1",
) -> Path:
    """A recording dir laid out as rtpengine 10.5 writes it (names and metadata text as measured)."""
    stem = f"{quote(call_id, safe='-._~')}-{tag}"
    (tmp_path / "pcaps").mkdir(exist_ok=True)
    (tmp_path / "metadata").mkdir(exist_ok=True)
    pcap = tmp_path / "pcaps" / f"{stem}.pcap"
    pcap.write_bytes(pcap_bytes(pkts))
    if meta:
        text = f"{pcap}\n\n"
        for mode, port, sess in (("offer", RE_FOR_CALLEE[1], 1), ("answer", RE_FOR_CALLER[1], 2)):
            text += (
                f"\nTimestamp started ms: 1700000000250.332\nSDP mode: {mode}\nSDP before RTP packet: 1\n\n"
            )
            text += _sdp(port, sess).replace("c=IN IP4 127.0.0.1", f"c=IN IP4 {advertised}")
        text += "\nTimestamp terminated ms(first monologue): 1700000002640.370"
        text += (
            "\n\ncall start time: 2023-11-14T22:13:20\ncall end time: 2023-11-14T22:13:22\n\n\nscenario=s1\n"
        )
        (tmp_path / "metadata" / f"rtpengine-meta-{stem}.txt").write_text(text)
    return pcap


def test_metadata_names_the_caller_even_when_the_callee_speaks_first(tmp_path: Path) -> None:
    pcap = spool(tmp_path, "a84b4c76e66710@pc33.example", rtpengine_call(b_delay=-0.5))
    meta_path = metadata_path_for(pcap)
    assert meta_path is not None and meta_path.parent.name == "metadata"
    meta = read_metadata(meta_path)
    assert meta.complete and meta.pcap_path == str(pcap) and [m for m, _ in meta.sdp] == ["offer", "answer"]
    assert meta.call_end == "2023-11-14T22:13:22" and meta.extra == "scenario=s1"
    rec = read_recording(pcap)
    assert rec.call_id == "a84b4c76e66710@pc33.example"
    assert [(d.role, d.src) for d in rec.directions] == [("caller", CALLER), ("callee", CALLEE)]
    wavs = recording_to_wavs(pcap, tmp_path / "wav")
    assert wavs.call_id == "a84b4c76e66710@pc33.example" and wavs.directions[0].role == "caller"
    assert wavs.directions[0].start_s == pytest.approx(0.5, abs=1 / RATE)
    assert corr(read_wav(wavs.dir1)[2], SIG_A) > 0.99


def test_roles_by_port_when_rtpengine_advertises_another_address(tmp_path: Path) -> None:
    pcap = spool(tmp_path, "c2", rtpengine_call(b_delay=-0.5), advertised="203.0.113.7")
    assert [(d.role, d.src) for d in read_recording(pcap).directions] == [
        ("caller", CALLER),
        ("callee", CALLEE),
    ]


def test_in_progress_metadata_in_tmp(tmp_path: Path) -> None:
    pcap = spool(tmp_path, "c1", rtpengine_call(), meta=False)
    assert metadata_path_for(pcap) is None
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / f"rtpengine-meta-{pcap.stem}.tmp").write_text(f"{pcap}\n\n")
    meta_path = metadata_path_for(pcap)
    assert meta_path is not None and not read_metadata(meta_path).complete


def test_find_recordings_by_call_id_and_time(tmp_path: Path) -> None:
    odd = "weird call/id;x=1 ü@host"
    a = spool(tmp_path, "call-a@host", rtpengine_call(), tag="0" * 16)
    b = spool(tmp_path, odd, rtpengine_call(), tag="1" * 16)
    c = spool(tmp_path, "call-a@host", rtpengine_call(), tag="2" * 16)
    (tmp_path / "pcaps" / "notes.txt").write_text("x")
    for p, mtime in ((a, 1000.0), (b, 2000.0), (c, 3000.0)):
        os.utime(p, (mtime, mtime))
    assert b.name == "weird%20call%2Fid%3Bx%3D1%20%C3%BC%40host-1111111111111111.pcap"
    assert call_id_from_path(b) == odd and call_id_from_path(tmp_path / "x.pcap") is None
    assert find_recordings(tmp_path) == [a, b, c]
    assert find_recordings(tmp_path / "pcaps", call_id="call-a@host") == [a, c]
    assert find_recordings(tmp_path, call_id=odd) == [b]
    assert find_recordings(tmp_path, since=1500.0) == [b, c]
    assert find_recordings(tmp_path, call_id="nope") == []
    with pytest.raises(RecordingError, match="does not exist"):
        find_recordings(tmp_path / "absent")
