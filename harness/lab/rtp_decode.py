"""RTP in a recording, from packet to samples: header parsing, counter unwrapping, loss and duplicates, and
G.711 decoding into runs placed by the RTP clock.

Decoding: PCMU (PT 0) and PCMA (PT 8) through lookup tables; every other payload type
(telephone-event, comfort noise, other codecs) is left out, so its time is silence. Each payload lands
at its RTP timestamp (32-bit wrap and 16-bit sequence wrap unwrapped, reordering undone, duplicates
dropped, gaps left as silence). A timestamp jump that the capture clock does not show starts a new run,
which is placed by capture time instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from harness.audio.codecs import alaw_decode, ulaw_decode

__all__ = [
    "DECODE",
    "PCMA",
    "PCMU",
    "SAMPLE_RATE",
    "RtpPacket",
    "Run",
    "Unique",
    "decode_runs",
    "layout",
    "parse_rtp",
    "unique_packets",
    "unwrap",
]

SAMPLE_RATE = 8000
PCMU, PCMA = 0, 8

_JUMP_S = 1.0  # RTP clock and capture clock disagreeing by more than this starts a new run
_MAX_DROPOUT = 3000  # a sequence jump larger than this is a sender restart, not loss (RFC 3550 A.1)

#: lookup tables: G.711 code -> 16-bit linear sample (harness.audio.codecs is bit-exact with ITU-T G.191)
DECODE: dict[int, NDArray[np.int16]] = {
    PCMU: ulaw_decode(np.arange(256)).astype(np.int16),
    PCMA: alaw_decode(np.arange(256)).astype(np.int16),
}


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One captured RTP packet (header fields and payload with padding removed)."""

    time: float  #: capture time, epoch seconds
    frame: int  #: frame number in the capture file
    seq: int
    timestamp: int
    payload_type: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes) -> tuple[int, int, int, int, bool, bytes] | None:
    """(ssrc, seq, timestamp, payload type, marker, payload) of an RTP packet, None for anything else."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    if 192 <= data[1] <= 223:  # RTCP (SR 200, RR 201, SDES, BYE, APP, feedback...), RFC 5761
        return None
    cc = data[0] & 0x0F
    pos = 12 + 4 * cc
    if data[0] & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(data) < pos + 4:
            return None
        pos += 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")
    end = len(data)
    if data[0] & 0x20:  # padding: the last byte counts the padding bytes, itself included
        if end == 0 or data[-1] == 0:
            return None
        end -= data[-1]
    if pos > end:
        return None
    return (
        int.from_bytes(data[8:12], "big"),
        int.from_bytes(data[2:4], "big"),
        int.from_bytes(data[4:8], "big"),
        data[1] & 0x7F,
        bool(data[1] & 0x80),
        data[pos:end],
    )


def unwrap(values: list[int], bits: int) -> list[int]:
    """Unwrap a modular counter, each value taken as the closest to the one before it."""
    mod, half = 1 << bits, 1 << (bits - 1)
    out: list[int] = []
    prev: int | None = None
    for v in values:
        cur = v if prev is None else prev + ((v - prev + half) % mod) - half
        out.append(cur)
        prev = cur
    return out


@dataclass
class Run:
    anchor: float  #: capture time of sample 0
    samples: NDArray[np.int16]


Unique = list[tuple[int, int, RtpPacket]]  #: (extended seq, extended timestamp, packet), in sequence order


def unique_packets(rtp: list[RtpPacket]) -> tuple[Unique, int, int]:
    """Unique packets (first copy of each sequence number), lost and duplicate counts of one stream."""
    seqs = unwrap([p.seq for p in rtp], 16)
    stamps = unwrap([p.timestamp for p in rtp], 32)
    seen: dict[int, tuple[int, int, RtpPacket]] = {}
    for s, ts, p in zip(seqs, stamps, rtp, strict=True):
        seen.setdefault(s, (s, ts, p))
    unique = sorted(seen.values(), key=lambda u: u[0])
    lost = 0
    for (a, _, _), (b, _, _) in pairwise(unique):
        if 1 < b - a <= _MAX_DROPOUT:
            lost += b - a - 1
    return unique, lost, len(rtp) - len(unique)


def layout(unique: Unique) -> list[tuple[float, int, list[tuple[int, RtpPacket]]]]:
    """Split the audio packets into runs the RTP clock agrees with: (anchor time, length, packets)."""
    groups: list[list[tuple[int, RtpPacket]]] = []
    prev: tuple[int, RtpPacket] | None = None
    for _, ts, p in unique:
        if p.payload_type not in DECODE or not p.payload:
            continue
        if prev is None or abs((ts - prev[0]) / SAMPLE_RATE - (p.time - prev[1].time)) > _JUMP_S:
            groups.append([])
        groups[-1].append((ts, p))
        prev = (ts, p)
    out = []
    for g in groups:
        base = min(ts for ts, _ in g)
        # the least-delayed packet tells best when the run's first sample was sent
        anchor = min(p.time - (ts - base) / SAMPLE_RATE for ts, p in g)
        length = max(ts - base + len(p.payload) for ts, p in g)
        out.append((anchor, length, [(ts - base, p) for ts, p in g]))
    return out


def decode_runs(unique: Unique) -> list[Run]:
    runs = []
    for anchor, length, pkts in layout(unique):
        out = np.zeros(length, dtype=np.int16)
        for pos, p in pkts:
            out[pos : pos + len(p.payload)] = DECODE[p.payload_type][np.frombuffer(p.payload, np.uint8)]
        runs.append(Run(anchor, out))
    return runs
