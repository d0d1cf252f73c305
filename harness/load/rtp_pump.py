"""RTP on load calls: pre-encoded G.711 frames sent by one pump per process, within a stream budget.

One greenlet ticks every 20 ms and sends the next frame of every active stream (one ``sendto`` per
packet, headers packed into a reused buffer): far cheaper than a greenlet per stream. The frames are
encoded once, at start-up. Packets go only to loopback addresses; an SDP answer pointing elsewhere
is refused and counted. One sink socket per process receives (and counts) whatever the far end sends,
and is the port every SDP offer names.

Imports gevent: only the load run imports this module.
"""

from __future__ import annotations

import ipaddress
import random
import socket as _socket
import struct
import time
from dataclasses import dataclass

import gevent
from gevent import socket

__all__ = ["RtpPump", "RtpStream", "encode_frames", "frame_set"]

FRAME_BYTES = 160  # 20 ms of 8 kHz G.711
PTIME_S = 0.020


def encode_frames(wav_path: str | None, law: str = "ulaw", seconds: float = 4.0) -> list[bytes]:
    """``seconds`` of audio as 20 ms G.711 frames: the WAV's first seconds, or a two-tone signal."""
    import numpy as np

    from harness.audio.codecs import alaw_encode, ulaw_encode

    samples = None
    if wav_path:
        from harness.audio import read_wav

        x, rate = read_wav(wav_path)
        if rate == 8000 and len(x):
            samples = np.asarray(x, dtype=np.float64)[: int(seconds * 8000)]
            if np.max(np.abs(samples)) <= 1.0:
                samples = samples * 32767.0
    if samples is None:
        t = np.arange(int(seconds * 8000)) / 8000.0
        samples = 6000.0 * (np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1020 * t))
    n = len(samples) // FRAME_BYTES * FRAME_BYTES
    codes = (alaw_encode if law == "alaw" else ulaw_encode)(samples[:n])
    raw = bytes(np.asarray(codes, dtype=np.uint8))
    return [raw[i:i + FRAME_BYTES] for i in range(0, len(raw), FRAME_BYTES)]


@dataclass
class RtpStream:
    dest: tuple[str, int]
    pt: int
    ssrc: int
    seq: int
    ts: int
    frame: int = 0
    sent: int = 0


class RtpPump:
    def __init__(self, local_ip: str, frames: dict[int, list[bytes]], budget: int):
        self.sock = socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.port: int = self.sock.getsockname()[1]
        self.frames = frames
        self.budget = budget
        self.streams: dict[int, RtpStream] = {}
        self.received = 0
        self.sent = 0
        self.refused = 0
        self.over_budget = 0
        self._ids = 0
        self._greenlets: list[gevent.Greenlet] = []

    def start(self) -> None:
        self._greenlets = [gevent.spawn(self._drain)]
        if self.frames:
            self._greenlets.append(gevent.spawn(self._pump))

    def close(self) -> None:
        gevent.killall(self._greenlets, block=True, timeout=2)
        self._greenlets = []
        self.sock.close()

    def open(self, ip: str, port: int, pt: int) -> int | None:
        """Start a stream to ``ip:port``; None when refused (not IPv4 loopback: the pump's socket is IPv4) or over
        the budget."""
        try:
            addr = ipaddress.ip_address(ip)
            loopback = addr.version == 4 and addr.is_loopback
        except ValueError:
            loopback = False
        if not loopback or not 0 < port < 65536:
            self.refused += 1
            return None
        if len(self.streams) >= self.budget or pt not in self.frames:
            self.over_budget += 1
            return None
        self._ids += 1
        self.streams[self._ids] = RtpStream((ip, port), pt, random.getrandbits(32), random.getrandbits(16),
                                            random.getrandbits(32), random.randrange(50))
        return self._ids

    def close_stream(self, sid: int | None) -> None:
        if sid is not None:
            self.streams.pop(sid, None)

    def _pump(self) -> None:
        header = bytearray(12)
        pack, sendto = struct.pack_into, self.sock.sendto
        nxt = time.perf_counter()
        while True:
            for st in list(self.streams.values()):
                frames = self.frames[st.pt]
                pack("!BBHII", header, 0, 0x80, st.pt, st.seq, st.ts, st.ssrc)
                try:  # noqa: SIM105 (hot loop: a with-statement per packet costs more)
                    sendto(bytes(header) + frames[st.frame], st.dest)
                except OSError:
                    pass  # a full socket buffer drops a packet, as a real network would
                st.seq = (st.seq + 1) & 0xFFFF
                st.ts = (st.ts + FRAME_BYTES) & 0xFFFFFFFF
                st.frame = (st.frame + 1) % len(frames)
                st.sent += 1
                self.sent += 1
            nxt += PTIME_S
            delay = nxt - time.perf_counter()
            if delay < -0.2:  # far behind (a stall): skip ahead instead of bursting
                nxt = time.perf_counter()
                delay = 0.0
            gevent.sleep(max(0.0, delay))

    def _drain(self) -> None:
        while True:
            try:
                self.sock.recvfrom(2048)
            except OSError:
                gevent.sleep(0.01)
                continue
            self.received += 1


def frame_set(wav_path: str | None) -> dict[int, list[bytes]]:
    """Frames for PCMU (payload type 0) and PCMA (8)."""
    return {0: encode_frames(wav_path, "ulaw"), 8: encode_frames(wav_path, "alaw")}

